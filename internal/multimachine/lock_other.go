//go:build !unix

package multimachine

import "errors"

// lockPath is not available here: the fleet runs on Unix-like systems only.
func lockPath(string) (func(), error) {
	return nil, errors.New("the conditional store helper needs flock, which this system does not have")
}
