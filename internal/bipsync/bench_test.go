package bipsync

import (
	"strings"
	"testing"
)

// Answers shaped like league's: a JWT access token and a defuse refresh token of the recorded lengths.
var (
	benchTokenAnswer = []byte(`{"token_type":"Bearer","expires_in":3600,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.` +
		strings.Repeat("a", 600) + `.` + strings.Repeat("b", 342) + `","refresh_token":"def50200` + strings.Repeat("c", 740) + `"}`)
	benchErrorAnswer = []byte(`{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token has been revoked"}`)
)

func BenchmarkDecodeTokenResponse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchTokenAnswer)))
	for b.Loop() {
		if _, err := decodeTokenResponse(benchTokenAnswer, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeErrorResponse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if f := decodeErrorResponse(benchErrorAnswer); f.Code != "invalid_grant" {
			b.Fatalf("code: got %q; want invalid_grant", f.Code)
		}
	}
}
