package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
)

// DevicePath is Bipsync's device authorization endpoint below the API base URL.
const DevicePath = "/v1/oauth/device"

// deviceFlow runs the device authorization grant with x/oauth2: DeviceAuth asks for a code, DeviceAccessToken polls the
// token endpoint as RFC 8628 says (every interval, 5 s when Bipsync names none; 5 s more after each slow_down; until
// the code expires). x/oauth2 polls on the wall clock and has no way to inject one, so the tests of this flow wait in
// real time: one interval per poll, with the fake server set to a 1 s interval.
func deviceFlow(ctx context.Context, e *env, c client, scopes []string) (*oauth2.Token, error) {
	cfg := &oauth2.Config{
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: c.baseURL + DevicePath,
			TokenURL:      c.baseURL + bipsync.TokenPath,
			// Bipsync documents credentials in the body; league reads them there first.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		Scopes: scopes,
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, deviceAuthError(err, c)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("the device authorization answer lacks a device code, a user code or a verification " +
			"address, so there is nothing to show a person. Nothing was issued")
	}
	w := e.Stderr
	fmt.Fprintf(w, "To authorize client %s, open this address on any device and sign in to Bipsync:\n\n    %s\n\n",
		c.clientID, printable(da.VerificationURI))
	fmt.Fprintf(w, "and enter the code:\n\n    %s\n\n", printable(da.UserCode))
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(w, "Or open this address, which carries the code:\n\n    %s\n\n", printable(da.VerificationURIComplete))
	}
	// The code's life is what Bipsync's expires_in said (x/oauth2 turns it into Expiry on receipt), never a figure
	// assumed here: Bipsync's default is 60 seconds, but a tenant may set another.
	life := codeLife(da)
	expiresIn := "Bipsync named no expiry"
	if life > 0 {
		expiresIn = fmt.Sprintf("the code expires in %s", seconds(life))
	}
	fmt.Fprintf(w, "Waiting for the approval (%s) ...\n", expiresIn)

	// The poll asks for no scope: the scopes were fixed when the code was issued.
	poll := *cfg
	poll.Scopes = nil
	tok, err := poll.DeviceAccessToken(ctx, da)
	if err == nil {
		return tok, nil
	}
	return nil, devicePollError(ctx, err, da, life)
}

// codeLife is how long the device code lives, from the answer's expires_in (0: the answer named none).
func codeLife(da *oauth2.DeviceAuthResponse) time.Duration {
	if da.Expiry.IsZero() {
		return 0
	}
	return max(0, time.Until(da.Expiry).Round(time.Second))
}

// seconds writes a whole number of seconds, as expires_in gives them.
func seconds(d time.Duration) string {
	if n := int(d / time.Second); n != 1 {
		return fmt.Sprintf("%d seconds", n)
	}
	return "1 second"
}

// expiredText says that the code expired, with the life Bipsync gave it when it named one.
func expiredText(life time.Duration) string {
	if life > 0 {
		return fmt.Sprintf("the code expired before it was approved (Bipsync gave it %s)", seconds(life))
	}
	return "the code expired before it was approved"
}

// deviceAuthError explains a refused device authorization request.
func deviceAuthError(err error, c client) error {
	a, ok := answerOf(err)
	if !ok {
		return fmt.Errorf("the device authorization request to %s%s failed: %s. Nothing was issued; check the "+
			"endpoint settings and the network, then run this command again", c.baseURL, DevicePath, describe(err))
	}
	var what string
	switch {
	case a.code == "invalid_client":
		what = fmt.Sprintf("Bipsync does not know the client ID %s: check -client-id (or BIPSYNC_CLIENT_ID) and the endpoint", c.clientID)
	case a.code == "invalid_scope":
		what = "Bipsync refused a scope: ask only for scopes the application may use (-scope)"
		if sc := bipsync.ScopeFromHint(a.hint); sc != "" {
			what = fmt.Sprintf("Bipsync refused the scope %q: ask only for scopes the application may use (-scope)", printable(sc))
		}
	case a.code == "unauthorized_client" || a.code == "unsupported_grant_type" || a.status == 404:
		what = "the application may not use the device authorization grant: ask Bipsync to enable it for this client ID, " +
			"or run this command with -pkce (the authorization code grant)"
	default:
		what = "the device authorization request was refused"
	}
	return fmt.Errorf("%s. Nothing was issued. %s", what, a.facts())
}

// devicePollError explains why polling ended without a token.
func devicePollError(ctx context.Context, err error, da *oauth2.DeviceAuthResponse, life time.Duration) error {
	if a, ok := answerOf(err); ok {
		switch a.code {
		case "access_denied":
			return fmt.Errorf("the request was denied on Bipsync's page, so nothing was issued. Run this command again "+
				"to start over. %s", a.facts())
		case "expired_token":
			return fmt.Errorf("%s. Run this command again and approve the new code sooner. %s", expiredText(life), a.facts())
		}
		return fmt.Errorf("polling for the approval failed: %s. Nothing usable was issued; run this command again", a.facts())
	}
	// DeviceAccessToken ends with the context's error at the code's expiry, when no poll saw expired_token.
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && !da.Expiry.IsZero() && !time.Now().Before(da.Expiry) {
		return fmt.Errorf("%s. Run this command again and approve the new code sooner", expiredText(life))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped before the approval came: %w", context.Cause(ctx))
	}
	msg := describe(err)
	if strings.Contains(msg, "missing access_token") {
		msg = "the answer had no access token"
	}
	return fmt.Errorf("polling for the approval failed: %s. If the request had been approved, its token is lost with "+
		"this answer and harms nothing; run this command again", msg)
}
