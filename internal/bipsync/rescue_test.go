package bipsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClient_Refresh_rescuesNewHeadOfUnusableAnswer: a 2xx refresh answer with a new refresh token but no usable
// access token means Bipsync rotated the chain. The error must hand the new head back (it is the chain now), stay
// classified as outcome unknown, and never print it.
func TestClient_Refresh_rescuesNewHeadOfUnusableAnswer(t *testing.T) {
	t.Parallel()
	const head = "def50200aaaabbbbccccdddd"
	for name, body := range map[string]string{
		"no access token":  `{"token_type":"Bearer","expires_in":3600,"refresh_token":"` + head + `"}`,
		"bad token type":   `{"token_type":"mac","expires_in":3600,"access_token":"eyJa.b.c","refresh_token":"` + head + `"}`,
		"expiry not valid": `{"token_type":"Bearer","expires_in":"soon","access_token":"eyJa.b.c","refresh_token":"` + head + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, body)
			}))
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL, ClientID: "cli"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Refresh(context.Background(), "def50200seed", nil)
			got, ok := RescuedRefreshToken(err)
			if !ok || got != head {
				t.Fatalf("rescued: got %q, %t; want the new head", got, ok)
			}
			if !IsOutcomeUnknown(err) {
				t.Errorf("got %v; want outcome unknown", err)
			}
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("got %T; want *Error", err)
			}
			if s := fmt.Sprintf("%v %+v %#v %v %+v %#v", err, err, err, *be, *be, *be); strings.Contains(s, head) {
				t.Errorf("the error prints the new head: %s", s)
			}
		})
	}
	// Client credentials start no chain: nothing to rescue.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3600,"refresh_token":"`+head+`"}`)
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "s"})
	if _, err := c.ClientCredentials(context.Background(), nil); err == nil {
		t.Fatal("client credentials without an access token: got no error")
	} else if _, ok := RescuedRefreshToken(err); ok {
		t.Error("client credentials: got a rescued refresh token; want none")
	}
}
