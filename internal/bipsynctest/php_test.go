package bipsynctest

import (
	"net/http"
	"testing"
)

func TestPHPNumberString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"123", "123"},
		{"-7", "-7"},
		{"1.5", "1.5"},
		{"0.1", "0.1"},
		{"100.0", "100"},
		{"1e20", "1.0E+20"},
		{"1.5e20", "1.5E+20"},
		{"1e-5", "1.0E-5"},
		{"123456789012345.0", "1.2345678901234E+14"},
		{"99999999999999999999", "1.0E+20"},
		{"1e999", "INF"},
	}
	for _, tt := range tests {
		if got := phpNumberString(tt.in); got != tt.want {
			t.Errorf("phpNumberString(%s): got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestPHPJSONString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`a/b`, `"a\/b"`},
		{`say "hi"`, `"say \"hi\""`},
		{"tab\there", `"tab\there"`},
		{"\x01", `"\u0001"`},
		{"é", `"\u00e9"`},
		{"😀", `"\ud83d\ude00"`},
		{`<&>`, `"<&>"`},
	}
	for _, tt := range tests {
		if got := phpJSONString(tt.in); got != tt.want {
			t.Errorf("phpJSONString(%q): got %s; want %s", tt.in, got, tt.want)
		}
	}
}

func TestPHPHTMLSpecialChars(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`<x>&"`, `&lt;x&gt;&amp;&quot;`},
		{`it's`, `it&#039;s`},
		{`&amp; stays`, `&amp; stays`},
		{`&#38; &#x26; stay`, `&#38; &#x26; stay`},
		{`&bogus; &#; &`, `&amp;bogus; &amp;#; &amp;`},
		{"bad\xffutf8", ``},
	}
	for _, tt := range tests {
		if got := phpHTMLSpecialChars(tt.in); got != tt.want {
			t.Errorf("phpHTMLSpecialChars(%q): got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want params
	}{
		{"a=1&a=2", params{"a": {value: "2"}}},
		{"a=x+y%20z", params{"a": {value: "x y z"}}},
		{"a=100%&b=%zz", params{"a": {value: "100%"}, "b": {value: "%zz"}}},
		{"flag&&=v", params{"flag": {}}},
		{"scope[]=read", params{"scope": {nonScalar: true}}},
		{"scope[]=read&scope=write", params{"scope": {value: "write"}}},
		{"client.id=c&client%20secret=s", params{"client_id": {value: "c"}, "client_secret": {value: "s"}}},
		{"a[b=1", params{"a_b": {value: "1"}}},
		{"a;b=1", params{"a;b": {value: "1"}}},
	}
	for _, tt := range tests {
		got := parseForm(tt.body)
		if len(got) != len(tt.want) {
			t.Errorf("parseForm(%q): got %v; want %v", tt.body, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("parseForm(%q)[%q]: got %+v; want %+v", tt.body, k, got[k], v)
			}
		}
	}
}

func TestParseJSONBody(t *testing.T) {
	t.Parallel()
	got := parseJSONBody([]byte(`{"s":" x ","t":true,"f":false,"n":null,"i":42,"a":[1],"o":{},"s":"last"}`))
	want := params{"s": {value: "last"}, "t": {value: "1"}, "f": {}, "n": {}, "i": {value: "42"},
		"a": {nonScalar: true}, "o": {nonScalar: true}}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("[%q]: got %+v; want %+v", k, got[k], v)
		}
	}
	for _, body := range []string{`[1]`, `"s"`, `{`, "{\"a\":\"\xff\"}", `null`} {
		if got := parseJSONBody([]byte(body)); len(got) != 0 {
			t.Errorf("parseJSONBody(%q): got %v; want empty", body, got)
		}
	}
}

func TestParamsGet(t *testing.T) {
	t.Parallel()
	p := params{"blank": {value: " \t"}, "padded": {value: " v\n"}, "arr": {nonScalar: true}}
	tests := []struct {
		name, def, want string
		err             bool
	}{
		{name: "padded", want: "v"},
		{name: "blank", def: " fallback ", want: "fallback"},
		{name: "missing", def: "", want: ""},
		{name: "arr", err: true},
	}
	for _, tt := range tests {
		got, err := p.get(tt.name, tt.def)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("get(%q, %q): got %q, %v; want %q, error %v", tt.name, tt.def, got, err, tt.want, tt.err)
		}
	}
	if err := func() *oauthError { _, err := p.get("arr", ""); return err }(); err.body() != errInvalidRequest("arr").body() {
		t.Errorf("non-scalar: got %s; want invalid_request for arr", err.body())
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, user, pass string
	}{
		{"Basic Y2xpOnNlYw==", "cli", "sec"},
		{"basic Y2xpOnNlYw==", "cli", "sec"},
		{"Basic Y2xpOnNlYw", "cli", "sec"},          // padding is optional
		{"Basic Y2xpOnNl Yw==", "cli", "sec"},       // whitespace is skipped
		{"Basic Y2xpOnNlYw=", "", ""},               // inconsistent padding
		{"Basic Y2xp!", "", ""},                     // outside the alphabet
		{"Basic Y2xp", "", ""},                      // no colon
		{"Basic OnNlYw==", "", ""},                  // empty user
		{"Basic Y2xpJTNBOnNlYw==", "cli%3A", "sec"}, // not URL-decoded
		{"Bearer Y2xpOnNlYw==", "", ""},
	}
	for _, tt := range tests {
		user, pass := basicAuth(http.Header{"Authorization": {tt.header}})
		if user != tt.user || pass != tt.pass {
			t.Errorf("basicAuth(%q): got %q, %q; want %q, %q", tt.header, user, pass, tt.user, tt.pass)
		}
	}
}

func TestJWTParseError(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "The JWT string must have two dots"},
		{"a.b", "The JWT string must have two dots"},
		{"abc.def.ghi", "Error while decoding from JSON"},
		{"a b.c.d", "Error while decoding from Base64Url, invalid base64 characters detected"},
		{"MQ.e30.c2ln", "headers must be an array"},
		{"e30.e30.c2ln", ""},
		{"e30.e30.c2=", "Error while decoding from Base64Url, invalid base64 characters detected"},
	}
	for _, tt := range tests {
		if got := jwtParseError(tt.in); got != tt.want {
			t.Errorf("jwtParseError(%q): got %q; want %q", tt.in, got, tt.want)
		}
	}
}
