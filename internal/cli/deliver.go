package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// delivery is where authorize hands the refresh token: a file, or standard output when that is not a terminal. It is
// decided, and the file's directory tried, before the authorization starts, so that a person never approves a request
// whose token then has nowhere to go.
type delivery struct {
	path  string   // the file, or "" for standard output
	force bool     // replace an existing file
	tmp   *os.File // a 0600 file beside path, created up front
	out   io.Writer
}

// errTerminal is the refusal to print a refresh token to a terminal.
var errTerminal = usagef("standard output is a terminal, and a refresh token is never shown: give -out FILE (created " +
	"with mode 0600), or pipe standard output into a secret manager, for example\n" +
	"  " + Program + " authorize | gh secret set BIPSYNC_REFRESH_TOKEN")

func planDelivery(path string, force bool, stdout io.Writer) (*delivery, error) {
	if path == "" {
		if isTerminal(stdout) {
			return nil, errTerminal
		}
		return &delivery{out: stdout}, nil
	}
	if fi, err := os.Lstat(path); err == nil {
		if !force {
			return nil, usagef("-out %s exists: give another file, or -force to replace it", path)
		}
		if !fi.Mode().IsRegular() {
			return nil, usagef("-out %s is not a regular file", path)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, usagef("-out %s: %v", path, err)
	}
	// CreateTemp makes the file with mode 0600 (before the umask, which can only take bits away).
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, usagef("-out %s: cannot create a file in its directory: %v", path, err)
	}
	return &delivery{path: path, force: force, tmp: tmp}, nil
}

// write hands token over and says where it went. A file is written in full and synced before it takes its name, and
// without -force it never replaces a file that appeared meanwhile.
func (d *delivery) write(token string) (string, error) {
	if d.path == "" {
		if _, err := io.WriteString(d.out, token); err != nil {
			return "", fmt.Errorf("write the refresh token to standard output: %w", err)
		}
		return "standard output", nil
	}
	name := d.tmp.Name()
	if _, err := io.WriteString(d.tmp, token+"\n"); err != nil {
		d.abandon()
		return "", fmt.Errorf("write %s: %w", d.path, err)
	}
	if err := d.tmp.Sync(); err != nil {
		d.abandon()
		return "", fmt.Errorf("sync %s: %w", d.path, err)
	}
	if err := d.tmp.Close(); err != nil {
		d.abandon()
		return "", fmt.Errorf("close %s: %w", d.path, err)
	}
	// From here the token is safe in the temporary file: a failure to name it keeps it there, and says so.
	d.tmp = nil
	var err error
	if d.force {
		err = os.Rename(name, d.path)
	} else if err = os.Link(name, d.path); err == nil {
		_ = os.Remove(name) // the token has its name; this was only a second name for it
	}
	if err != nil {
		return "", fmt.Errorf("%w; the refresh token is in %s (mode 0600): move it where it belongs", err, name)
	}
	return d.path + " (mode 0600)", nil
}

// abandon removes what plan created when the token never came.
func (d *delivery) abandon() {
	if d != nil && d.tmp != nil {
		d.tmp.Close()
		os.Remove(d.tmp.Name())
	}
}
