package cli

import (
	"strings"
)

// lineWidth is the width a failure's lines are wrapped to: a terminal's 80 columns.
const lineWidth = 80

// failure is a command's failure told in parts a person reads in order: what happened, what to do, and the facts (the
// error it comes from). fail prints each part on lines of its own, wrapped at 80 columns; Error gives them on one line
// for logs and for callers that wrap it.
type failure struct {
	// heading follows "PROGRAM CMD: " on the first line; default "failed." after "PROGRAM CMD".
	heading  string
	happened string
	todo     string
	facts    string
	err      error
}

func (f *failure) Error() string {
	return strings.TrimSpace(f.heading+" "+f.happened) + " " + f.todo + " (" + f.facts + ")"
}

func (f *failure) Unwrap() error { return f.err }

// lines lays the failure out under its heading for the command cmd ("PROGRAM CMD"), one labelled part after another.
func (f *failure) lines(cmd string) string {
	var b strings.Builder
	if f.heading != "" {
		b.WriteString(cmd + ": " + f.heading + "\n")
	} else {
		b.WriteString(cmd + " failed.\n")
	}
	for _, part := range []struct{ label, text string }{
		{"What happened:", f.happened},
		{"What to do:", f.todo},
		{"Facts:", printable(f.facts)},
	} {
		if part.text != "" {
			b.WriteString(wrap(part.label, part.text, lineWidth))
		}
	}
	return b.String()
}

// wrap writes text after label, indented under its start, in lines of at most width columns; a word longer than a
// line (a path, an address) gets a line of its own rather than being cut.
func wrap(label, text string, width int) string {
	const indent = "  "
	hang := strings.Repeat(" ", len(indent)+15)
	var b strings.Builder
	line := indent + label + strings.Repeat(" ", max(1, len(hang)-len(indent)-len(label)))
	fresh := true
	for _, word := range strings.Fields(text) {
		if !fresh && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line, fresh = hang, true
		}
		if !fresh {
			line += " "
		}
		line += word
		fresh = false
	}
	b.WriteString(line + "\n")
	return b.String()
}
