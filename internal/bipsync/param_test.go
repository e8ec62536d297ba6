package bipsync

import (
	"errors"
	"testing"
)

func TestMissingParameter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"client_secret", &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_request", Hint: "Check the `client_secret` parameter"}, "client_secret"},
		{"escaped", &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_request", Hint: "Check the `a&amp;b` parameter"}, "a&b"},
		{"another hint", &Error{Op: OpRefresh, StatusCode: 401, Code: "invalid_request", Hint: "Token has been revoked"}, ""},
		{"another code", &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Check the `client_secret` parameter"}, ""},
		{"no answer", &Error{Op: OpRefresh, Code: "invalid_request", Hint: "Check the `client_secret` parameter"}, ""},
		{"not a bipsync error", errors.New("Check the `client_secret` parameter"), ""},
	} {
		if got := MissingParameter(tc.err); got != tc.want {
			t.Errorf("%s: got %q; want %q", tc.name, got, tc.want)
		}
	}
}
