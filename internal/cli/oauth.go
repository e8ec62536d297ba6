package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
)

// answer is an error answer of Bipsync as x/oauth2 reports it, with league's hint, which x/oauth2 does not parse.
type answer struct {
	status                  int
	code, description, hint string
}

// answerOf returns the server's error answer inside err, if err is one.
func answerOf(err error) (answer, bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return answer{}, false
	}
	a := answer{code: re.ErrorCode, description: re.ErrorDescription}
	if re.Response != nil {
		a.status = re.Response.StatusCode
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Hint        string `json:"hint"`
	}
	if json.Unmarshal(re.Body, &body) == nil {
		a.hint = body.Hint
		if a.code == "" {
			a.code, a.description = body.Error, body.Description
		}
	}
	return a, true
}

// facts says what Bipsync answered, in one line: status, error, description and hint. It never quotes a body that is
// not an OAuth error (a proxy's page could echo the request, secrets included).
func (a answer) facts() string {
	parts := []string{fmt.Sprintf("HTTP %d", a.status)}
	if a.code != "" {
		parts = append(parts, "error "+printable(a.code))
	}
	if a.description != "" {
		parts = append(parts, printable(a.description))
	}
	if a.hint != "" {
		parts = append(parts, "hint: "+printable(a.hint))
	}
	return "Bipsync answered " + strings.Join(parts, ", ")
}

// describe turns an error of an x/oauth2 request into a message: the server's answer, or the transport's error (it
// names the endpoint, never a secret: x/oauth2 sends them in the body).
func describe(err error) string {
	if a, ok := answerOf(err); ok {
		return a.facts()
	}
	return printable(err.Error())
}
