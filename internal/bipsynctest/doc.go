// Package bipsynctest is a fake Bipsync OAuth token server for tests and the local demo.
//
// It answers POST /v1/oauth/token the way league/oauth2-server 9.4.1 (the library behind Bipsync's token
// endpoint) does, byte for byte where that behaviour was recorded: the same statuses, headers, compact JSON
// bodies and order of checks. A refresh exchange revokes the refresh token it consumed and the access token
// issued with it, refresh tokens live a month on an injectable clock, and GET /v1/me accepts only live access
// tokens. Fault injection and counters let client tests assert how many exchanges they caused.
//
// The package speaks the wire protocol with literal JSON and never imports the token client it tests. This
// comment is the record of the behaviour it reproduces; the contract tests of this package replay it, case by
// case, so that a broken fake cannot make broken client code look green.
//
// # Why league, and which league
//
// Bipsync documents the token endpoint's parameters and its success answer, but shows no error body. Everything
// visible points to league/oauth2-server 9.x on PHP: refresh tokens start with "def50200" (the header of a
// defuse/php-encryption ciphertext, which league uses to seal them), the success keys come in league's order,
// and the device grant's answer has league's shape, which first shipped in 9.0. The behaviour below was recorded
// over HTTP against a local build of league/oauth2-server 9.4.1 on PHP 8.2, with the refresh-token grant (refresh
// tokens live one month) and the client-credentials grant (access tokens live one hour) enabled; confidential
// clients cli-conf (secret sec-conf) and cli-conf2 (sec-conf2), the public client cli-pub, and the scopes read,
// write and team_abc. The contract tests use the same clients and scopes.
//
// Older league (7.3 to 8.5) answers a dead refresh token with 401 invalid_request instead of 400 invalid_grant,
// with the same hints, and adds a "message" key (a copy of error_description) after "hint" to every error body.
// Clients treat that form as a dead refresh token too; tests call it "league 8".
//
// # Headers and bodies
//
// A success answer has the headers pragma: no-cache, cache-control: no-store and content-type: application/json;
// charset=UTF-8, with the names in lower case as league sets them. An error answer has only Content-type:
// application/json: no charset, no Cache-Control, no Pragma. An invalid_client answer adds WWW-Authenticate:
// Basic realm="OAuth" when the request carried an Authorization header (Bearer realm="OAuth" when that header
// starts with "Bearer"), and nothing when the client authenticated in the body only.
//
// Bodies are PHP's compact json_encode output without a trailing newline ("/" is written "\/", a tab "\t"). Error
// keys come in the order error, error_description, then hint when there is one; 9.4.1 never writes "message".
// The bodies, by the names the tests use:
//
//	S-RT        {"token_type":"Bearer","expires_in":3600,"access_token":"<JWT>","refresh_token":"def50200…"}
//	S-CC        {"token_type":"Bearer","expires_in":3600,"access_token":"<JWT>"}   (client_credentials: no refresh token)
//	E-UGT       400 unsupported_grant_type, "The authorization grant type is not supported by the authorization
//	            server.", hint "Check that all required parameters have been provided"
//	E-REQ(p)    400 invalid_request, "The request is missing a required parameter, includes an invalid parameter
//	            value, includes a parameter more than once, or is otherwise malformed.", hint "Check the `p` parameter"
//	E-CLI       401 invalid_client, "Client authentication failed", no hint
//	E-RT(h)     400 invalid_grant, "The refresh token is invalid.", hint h
//	E-SCOPE(s)  400 invalid_scope, "The requested scope is invalid, unknown, or malformed", hint "Check the `s` scope"
//	            (s HTML-escaped, as htmlspecialchars writes it)
//	E-AD(h)     401 access_denied, "The resource owner or authorization server denied the request.", hint h
//	            (the protected endpoint)
//	server_error  500, "The authorization server encountered an unexpected condition which prevented it from
//	            fulfilling the request: <hint>" (league's answer to an internal failure; the fault injector sends it)
//
// expires_in is computed when the answer is written: expiry minus now, in whole seconds (3600, or 3599 across a
// second boundary). No answer carries a "scope" key. Bipsync's own documentation shows token_type "bearer" in
// lower case; Options.TokenType answers either.
//
// # Order of checks
//
// A refresh request is checked in this order, and the first failure is the answer: the grant type (before any
// client check), client_id, the client's existence, the secret of a confidential client (missing or empty gives
// E-REQ(client_secret), wrong gives E-CLI; a public client's secret is not looked at), refresh_token present, the
// token decrypts, the token belongs to this client, expiry (before revocation: a token both expired and revoked
// is "Token has expired"), revocation, then the scopes (an unknown scope is named before one the chain does not
// hold). Only then are the old tokens revoked and new ones issued. So a wrong secret is reported before an expired
// token, and a request that fails consumes nothing.
//
// Every parameter is trimmed, and PHP's form parsing keeps the last of two values of one name. Client credentials
// come from the body first; HTTP Basic is the fallback. league reads only the parsed body: a JSON body gives
// E-UGT unless a front end decodes JSON into the parsed body, in which case a non-scalar value gives E-REQ for its
// parameter, numbers and booleans are read as strings (false counts as missing) and malformed JSON gives E-UGT.
// The fake models that front end by default (Options.RejectJSON turns it off). There is no method check: a GET,
// whose query league does not read, gets E-UGT.
//
// # The cases
//
// The numbered cases below are the recorded answers the contract tests replay by number. Requests are POST
// /v1/oauth/token with a form body and the confidential client cli-conf unless said otherwise.
//
//	 1  refresh, form body, valid token                                  200 S-RT
//	 2  refresh, JSON body, JSON not decoded                             400 E-UGT
//	 3  refresh, JSON body decoded by a front end                        200 S-RT
//	 4  refresh, multipart/form-data                                     200 S-RT
//	 5  refresh, form with "; charset=UTF-8"                             200 S-RT
//	 6  reuse of a consumed (rotated) refresh token                      400 E-RT(Token has been revoked)
//	 7  cli-conf's token from cli-pub or cli-conf2, and the reverse      400 E-RT(Token is not linked to client)
//	 8  garbage token, or one hex digit changed in a real one            400 E-RT(Cannot decrypt the refresh token)
//	 9  expired refresh token                                            400 E-RT(Token has expired)
//	10  expired and already revoked                                      400 E-RT(Token has expired)
//	11  wrong secret in the body                                         401 E-CLI, no WWW-Authenticate
//	12  wrong secret through HTTP Basic                                  401 E-CLI, WWW-Authenticate: Basic realm="OAuth"
//	13  wrong secret in the body, "Authorization: Bearer xyz"            401 E-CLI, WWW-Authenticate: Bearer realm="OAuth"
//	14  right secret in the body, wrong one in Basic                     200 S-RT
//	15  wrong secret in the body, right one in Basic                     401 E-CLI, WWW-Authenticate: Basic realm="OAuth"
//	16  unknown client_id                                                401 E-CLI
//	17  confidential client, client_secret missing or empty              400 E-REQ(client_secret)
//	18  client_id missing, or only spaces                                400 E-REQ(client_id)
//	19  client_id padded with spaces                                     read as cli-conf
//	20  client_id twice (cli-nope, then cli-conf)                        read as cli-conf
//	21  client through HTTP Basic only                                   200 S-RT
//	22  refresh_token missing                                            400 E-REQ(refresh_token)
//	23  refresh_token missing and a wrong secret                         401 E-CLI
//	24  expired token and a wrong secret                                 401 E-CLI
//	25  unknown grant_type, or password (not enabled)                    400 E-UGT
//	26  unknown grant_type without client_id, or with a wrong secret     400 E-UGT
//	27  grant_type missing; empty body                                   400 E-UGT
//	28  GET with the parameters in the query                             400 E-UGT
//	29  a scope beyond the grant (read write team_abc on read write)     400 E-SCOPE(team_abc)
//	30  a scope the server does not know (read admin)                    400 E-SCOPE(admin)
//	31  write admin on a read-only token                                 400 E-SCOPE(admin)
//	32  scope <x>&"                                                      400 E-SCOPE(&lt;x&gt;&amp;&quot;)
//	33  scope "read<TAB>write" (only single spaces separate scopes)      400 E-SCOPE(read\twrite)
//	34  scope omitted                                                    200 S-RT, the chain keeps its scopes
//	35  scope empty                                                      200 S-RT, as omitted
//	36  a subset (read)                                                  200 S-RT; the new refresh token is narrowed
//	                                                                         too: asking it for read write later gives
//	                                                                         E-SCOPE(write)
//	37  after a failed scope request, the same token without scope       200 S-RT (the failure consumed nothing)
//	38  public client with a bogus client_secret                         200 S-RT
//	39  client_credentials without scope                                 200 S-CC, JWT scopes [], sub cli-conf
//	40  client_credentials, scope read team_abc                          200 S-CC, JWT scopes [read team_abc]
//	41  client_credentials, scope read                                   200 S-CC
//	42  client_credentials, unknown scope team_zzz                       400 E-SCOPE(team_zzz)
//	43  client_credentials, public client                                401 E-CLI
//	44  client_credentials, wrong secret                                 401 E-CLI
//	45  client_credentials, secret missing                               400 E-REQ(client_secret)
//	46  client_credentials, JSON body decoded by a front end             200 S-CC
//	47  decoded JSON: "scope":["read"], "refresh_token":{…},             400 E-REQ(scope), E-REQ(refresh_token),
//	    "client_secret":false                                                E-REQ(client_secret)
//	48  decoded JSON: "scope":123 ("scope":null counts as omitted)       400 E-SCOPE(123)
//	49  decoded JSON: malformed, or a top-level array                    400 E-UGT
//	50  GET /v1/me with the access token before a refresh               401 E-AD(Access token has been revoked)
//	51  GET /v1/me without an Authorization header                       401 E-AD(Missing "Authorization" header)
//	52  GET /v1/me with "Bearer abc.def.ghi"                             401 E-AD(Error while decoding from JSON)
//
// Stock league requires no scope for client_credentials (Bipsync's documentation says a team_{id} scope is
// required; that rule is Bipsync's own code and is not modelled), and it rejects a public client on that grant.
//
// # Rotation and revocation
//
// A successful refresh runs, in order: look up the client, check its secret (confidential clients), check that
// the refresh token is not revoked, settle the scopes, revoke the old access token, revoke the old refresh token,
// store the new access token, store the new refresh token. The access token revoked is the one issued together
// with the consumed refresh token (its id is sealed inside it); other access tokens of the client or the user are
// untouched. A server may switch refresh-token revocation off, but never access-token revocation. No endpoint
// revokes or inspects a token otherwise: tokens die by rotation or by expiry (RevokeChain stands for a user
// withdrawing consent).
//
// A refresh token is "def50200" and hex, 168 + 2 × the length of its sealed JSON payload (client_id,
// refresh_token_id, access_token_id, scopes, user_id, expire_time): several hundred characters, 744 to 762 when
// recorded. Every rotation issues a new refresh token with a fresh month of life (league's P1M is a calendar
// month; the fake uses Options.RefreshTokenTTL, 30 days by default), so a chain exchanged at least once a month
// lives on. An access token is an RS256 JWT with header {"typ":"JWT","alg":"RS256"} and the claims aud (the client
// id, a plain string), jti (80 hex), iat, nbf, exp (fractional seconds), sub (the user id, or the client id for
// client_credentials) and scopes. The fake's tokens have these shapes but are random strings it keeps track of, so
// any string it did not issue, including a real token with one digit changed, "cannot be decrypted".
//
// # Concurrency
//
// league checks a refresh token and revokes it later, without a lock of its own; whether two simultaneous
// exchanges of one refresh token can both succeed depends on Bipsync's token repository. Measured against PHP's
// built-in server with four workers and refresh tokens in SQLite (checked, then revoked, as league's repositories
// usually do), 8 of 20 rounds of two simultaneous refreshes of one token gave 200 to both: the chain forked into
// two live refresh tokens and two live access tokens. The other 12 gave one 200 and one 400 "Token has been
// revoked"; with a pause of 1.5 s inside the server, both succeeded every time. So a client that exchanges one
// head from two places at once may get two successes and must then keep exactly one head. Sequential reuse of a
// consumed token always gets "Token has been revoked".
//
// By default the fake checks, revokes and issues in one step under its lock, so two simultaneous exchanges of one
// refresh token give exactly one success and one "Token has been revoked". Options.RevokePause (SetRevokePause, or
// POST /_fake/revoke-pause) makes it behave like league on such a repository: each exchange waits between its checks
// and the revocation without holding the lock, so simultaneous exchanges both succeed and fork the chain;
// Stats.RefreshForked counts those, Stats.RefreshRevoked the exchanges refused as revoked.
//
// # Replay detection
//
// RFC 9700 section 4.14.2 recommends that a server which rotates refresh tokens treat the reuse of a rotated one as a
// sign of theft: it cannot tell the rightful client from the thief, so it revokes the active refresh token of the
// family too. league 9.4.1 does not do this (a reuse is refused and nothing else changes), and nothing seen of Bipsync
// says it does; a server that adds it later would punish every client that lets two runners exchange one head.
// Options.ReplayDetection (SetReplayDetection) models such a server: the reuse of a rotated refresh token revokes its
// whole family (every refresh and access token descended from the same authorization, forks included) and is answered
// E-RT(Token has been revoked), as any reuse is; the family's live refresh tokens are then refused the same way and its
// access tokens get E-AD(Access token has been revoked). The check follows league's order, so an expired rotated token
// is "Token has expired" and revokes nothing. With a revoke pause as well, an exchange that passed its checks but
// finds, when its pause ends, that another exchange rotated the token meanwhile is a reuse too: the family is revoked
// and that exchange refused, so simultaneous exchanges of one head end the chain instead of forking it.
// Stats.RefreshReplays counts the reuses that revoked a family.
//
// # Counters
//
// Stats counts, besides successes: RefreshAttempts, every refresh request (each sent a refresh token to the server);
// RefreshRefused, those answered with an OAuth error, and among them by reason RefreshRevoked, RefreshExpired and
// RefreshInvalid (cannot decrypt, or another client's token); RefreshForked and RefreshReplays as above.
// LiveRefreshTokens says, at any moment, how many refresh tokens of a family the server would exchange: exactly one
// for a healthy chain, more for a forked one, none for a dead one.
//
// # Grants that start a chain
//
// Besides the refresh and client credentials grants, the fake runs the two grants a person approves, which start a
// chain: the device authorization grant (POST /v1/oauth/device, then polls of the token endpoint; device.go holds
// the recorded bodies and the order of checks) and the authorization code grant with PKCE (an authorize page at
// AuthorizePath that redirects to a registered redirect URI, then grant_type=authorization_code; authcode.go). Both
// answer an approval with an ordinary token answer with a refresh token. ApproveDevice, DenyDevice, the verification
// page and POST /_fake/device/approve play the person of the device grant; DenyAuthorizations the person on the
// authorize page.
//
// # What the recording cannot tell
//
// Bipsync's own repositories, scope settlement, per-client grant restrictions (league 9.2's unauthorized_client),
// framework headers (a framework may add Cache-Control to errors) and its 405 for other methods are not visible
// from league alone; neither are the 429 answers a front end might add. Bipsync also documents 403 for a caller
// whose IP address is not allowed. Verify against a Bipsync sandbox tenant when one is at hand (the provider's
// tenant tests do).
package bipsynctest
