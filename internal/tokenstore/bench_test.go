package tokenstore

import (
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	key, rec := testKey(testSeed), sampleRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(key, testSeed, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	key := testKey(testSeed)
	env, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(key, testSeed, env); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFileStore(b *testing.B) Store {
	b.Helper()
	st, err := NewFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func BenchmarkFileLoad(b *testing.B) { benchLoad(b, benchFileStore(b)) }

// BenchmarkFileSave includes both fsyncs (file and directory), the cost of every exchange's durability.
func BenchmarkFileSave(b *testing.B) { benchSave(b, benchFileStore(b)) }

func BenchmarkLockRoundTrip(b *testing.B) {
	st, key := benchFileStore(b), testKey(testSeed)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		unlock, err := st.Lock(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkS3Load is one GetObject and Open against moto on loopback.
func BenchmarkS3Load(b *testing.B) { benchLoad(b, newParallelS3Store(b)) }

// BenchmarkS3Save is a save that replaces the record: a GetObject (revision and ETag), then a PutObject with If-Match.
func BenchmarkS3Save(b *testing.B) { benchSave(b, newParallelS3Store(b)) }

// BenchmarkS3Probe is a process's first check of a bucket used before: two conditional puts, both refused.
func BenchmarkS3Probe(b *testing.B) {
	st := newParallelS3Store(b)
	ctx := b.Context()
	if err := st.ensureConditional(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		probed.Delete(st.probeKey)
		if err := st.ensureConditional(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLoad loads one saved record again and again.
func benchLoad(b *testing.B, st Store) {
	key := testKey(testSeed)
	ctx := b.Context()
	if err := st.Save(ctx, key, testSeed, sampleRecord(), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec, err := st.Load(ctx, key, testSeed); err != nil || rec == nil {
			b.Fatal(rec, err)
		}
	}
}

// benchSave saves one record after another, each in place of the one before.
func benchSave(b *testing.B, st Store) {
	key, rec := testKey(testSeed), sampleRecord()
	ctx := b.Context()
	var replaces *Revision
	b.ReportAllocs()
	for b.Loop() {
		rec.ID = NewRecordID()
		if err := st.Save(ctx, key, testSeed, rec, replaces); err != nil {
			b.Fatal(err)
		}
		replaces = rec.Revision().Ptr()
	}
}
