//go:build !unix

package tokenstore

import "os"

// checkOwner has nothing to check where ownership is not in the file mode: on Windows the user profile's ACLs already
// confine the cache directory to its owner.
func checkOwner(os.FileInfo) error { return nil }
