package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// hygieneCorpus is everything one test collected, by source.
type hygieneCorpus struct {
	mu      sync.Mutex
	order   []string
	sources map[string][]byte
}

func newHygieneCorpus() *hygieneCorpus { return &hygieneCorpus{sources: map[string][]byte{}} }

func (c *hygieneCorpus) add(name string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.sources[name]; !ok {
		c.order = append(c.order, name)
	}
	c.sources[name] = append(c.sources[name], b...)
	c.sources[name] = append(c.sources[name], '\n')
}

// addShowJSON adds a `show -json` document (state or plan) with the grant's token attributes taken out after checking
// that they are marked sensitive. It returns how many token values it took out.
func (c *hygieneCorpus) addShowJSON(t *testing.T, name string, doc []byte) int {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Errorf("%s: not JSON: %v", name, err)
		c.add(name, doc)
		return 0
	}
	n, err := dropGrantTokens(v)
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c.add(name, b)
	return n
}

// addStoreFiles adds every file under dir.
func (c *hygieneCorpus) addStoreFiles(t *testing.T, dir string) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		c.add("token store: "+d.Name(), b)
		return nil
	})
	if err != nil {
		t.Errorf("reading the token store: %v", err)
	}
	return files
}

// grantTokenAttributes hold the chain in state by design: state must keep it, and the schema marks them sensitive.
var grantTokenAttributes = []string{"access_token", "refresh_token"}

// dropGrantTokens removes the grant's token attributes from a decoded `show -json` document wherever a resource's
// values appear (state values, planned values, prior state, resource changes and drift), after checking the matching
// sensitivity marks.
func dropGrantTokens(doc map[string]any) (int, error) {
	var errs []error
	n := 0
	drop := func(where string, values, marks any) {
		vals, _ := values.(map[string]any)
		sens, _ := marks.(map[string]any)
		for _, a := range grantTokenAttributes {
			v, ok := vals[a]
			if !ok || v == nil {
				continue
			}
			if sens[a] != true {
				errs = append(errs, fmt.Errorf("%s: %s holds a value that is not marked sensitive", where, a))
			}
			delete(vals, a)
			n++
		}
	}
	var module func(where string, m any)
	module = func(where string, m any) {
		mod, _ := m.(map[string]any)
		rs, _ := mod["resources"].([]any)
		for _, r := range rs {
			res, _ := r.(map[string]any)
			if res["type"] == "bipsync_refresh_grant" {
				drop(where+" "+fmt.Sprint(res["address"]), res["values"], res["sensitive_values"])
			}
		}
		cms, _ := mod["child_modules"].([]any)
		for _, cm := range cms {
			module(where, cm)
		}
	}
	values := func(where string, v any) {
		if m, ok := v.(map[string]any); ok {
			module(where, m["root_module"])
		}
	}
	values("state values", doc["values"])
	values("planned values", doc["planned_values"])
	if prior, ok := doc["prior_state"].(map[string]any); ok {
		values("prior state", prior["values"])
	}
	for _, key := range []string{"resource_changes", "resource_drift"} {
		list, _ := doc[key].([]any)
		for _, rc := range list {
			r, _ := rc.(map[string]any)
			if r["type"] != "bipsync_refresh_grant" {
				continue
			}
			ch, _ := r["change"].(map[string]any)
			drop(key+" before", ch["before"], ch["before_sensitive"])
			drop(key+" after", ch["after"], ch["after_sensitive"])
		}
	}
	return n, errors.Join(errs...)
}

// dropStateFileGrantTokens removes the grant's token attributes from a raw state file after checking that the file
// lists them as sensitive.
func dropStateFileGrantTokens(raw []byte) ([]byte, int, error) {
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, 0, fmt.Errorf("state file: %w", err)
	}
	var errs []error
	n := 0
	rs, _ := st["resources"].([]any)
	for _, r := range rs {
		res, _ := r.(map[string]any)
		if res["type"] != "bipsync_refresh_grant" {
			continue
		}
		insts, _ := res["instances"].([]any)
		for _, in := range insts {
			inst, _ := in.(map[string]any)
			attrs, _ := inst["attributes"].(map[string]any)
			marks, _ := json.Marshal(inst["sensitive_attributes"])
			for _, a := range grantTokenAttributes {
				if v, ok := attrs[a]; !ok || v == nil {
					continue
				}
				if !bytes.Contains(marks, []byte(`"`+a+`"`)) {
					errs = append(errs, fmt.Errorf("state file: %s is not listed in sensitive_attributes", a))
				}
				delete(attrs, a)
				n++
			}
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, 0, err
	}
	return b, n, errors.Join(errs...)
}

// secretNeedles returns what to search for: each secret, and for long ones a 32-character piece of the middle too,
// which finds a token cut short or wrapped across lines.
func secretNeedles(secrets []string) map[string]string {
	needles := map[string]string{}
	for i, s := range secrets {
		if s == "" {
			continue
		}
		name := fmt.Sprintf("secret #%d (%s…, %d characters)", i, s[:min(len(s), 8)], len(s))
		needles[s] = name
		if len(s) >= 64 {
			mid := len(s) / 2
			needles[s[mid-16:mid+16]] = name + ", middle piece"
		}
	}
	return needles
}

// scan searches every source for every needle and describes each hit without the secret itself. It returns the
// bytes scanned.
func (c *hygieneCorpus) scan(secrets []string) (scanned int, hits []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	needles := secretNeedles(secrets)
	keys := make([]string, 0, len(needles))
	for k := range needles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range c.order {
		b := c.sources[name]
		scanned += len(b)
		for _, k := range keys {
			if i := bytes.Index(b, []byte(k)); i >= 0 {
				from, to := max(0, i-60), min(len(b), i+len(k)+60)
				context := strings.ReplaceAll(string(b[from:to]), k, "<SECRET>")
				hits = append(hits, fmt.Sprintf("%s holds %s: …%s…", name, needles[k], context))
			}
		}
	}
	return scanned, hits
}

// check fails the test for every hit and returns the bytes scanned.
func (c *hygieneCorpus) check(t *testing.T, secrets []string) int {
	t.Helper()
	scanned, hits := c.scan(secrets)
	for _, h := range hits {
		t.Error(h)
	}
	return scanned
}

func (c *hygieneCorpus) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	groups := map[string]int{}
	for _, name := range c.order {
		kind, _, _ := strings.Cut(name, ":")
		groups[kind] += len(c.sources[name])
	}
	var parts []string
	for k, v := range groups {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// TestHygieneCorpus_scan shows that the scan finds a secret whole, cut short or wrapped, and that a grant token not
// marked sensitive is reported.
func TestHygieneCorpus_scan(t *testing.T) {
	t.Parallel()
	secret := "def50200" + strings.Repeat("0123456789abcdef", 8)
	c := newHygieneCorpus()
	c.add("clean", []byte("nothing to see"))
	c.add("whole", []byte("token="+secret))
	c.add("cut", []byte("token="+secret[:len(secret)-10]+"…"))
	c.add("wrapped", []byte(secret[:30]+"\n"+secret[30:]))
	scanned, hits := c.scan([]string{secret})
	if scanned == 0 {
		t.Fatal("scanned 0 bytes")
	}
	var sources []string
	for _, h := range hits {
		name, _, _ := strings.Cut(h, " holds ")
		sources = append(sources, name)
		if strings.Contains(h, secret) {
			t.Errorf("hit %q shows the secret", h)
		}
	}
	sort.Strings(sources)
	sources = slices.Compact(sources)
	if got, want := strings.Join(sources, ","), "cut,whole,wrapped"; got != want {
		t.Errorf("sources with hits: got %s; want %s", got, want)
	}

	doc := map[string]any{"values": map[string]any{"root_module": map[string]any{"resources": []any{
		map[string]any{"address": grantAddr, "type": "bipsync_refresh_grant",
			"values":           map[string]any{"access_token": "at", "refresh_token": "rt", "token_type": "Bearer"},
			"sensitive_values": map[string]any{"access_token": true}},
	}}}}
	n, err := dropGrantTokens(doc)
	if n != 2 || err == nil || !strings.Contains(err.Error(), "refresh_token holds a value that is not marked sensitive") {
		t.Errorf("dropGrantTokens: got %d, %v; want 2 values dropped and refresh_token reported unmarked", n, err)
	}
}
