package provider

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// envStoreHelperDir turns the test binary into a token store program (a stand-in for a secret manager) that keeps
// records as files in the named directory: `BIN get KEY` prints a record, `BIN put KEY` reads one from stdin.
const envStoreHelperDir = "BIPSYNC_TEST_STORE_HELPER_DIR"

var storeKeyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// helperMain runs the store program, or a stand-in CLI (see fakeCLIMain), when the environment asks for it, and
// reports whether it did.
func helperMain() bool {
	fakeCLIMain()
	dir := os.Getenv(envStoreHelperDir)
	if dir == "" {
		return false
	}
	os.Exit(runStoreHelper(dir, os.Args[1:]))
	return true
}

func runStoreHelper(dir string, args []string) int {
	if len(args) != 2 || !storeKeyPattern.MatchString(args[1]) {
		fmt.Fprintln(os.Stderr, "usage: store-helper get|put KEY")
		return 2
	}
	file := filepath.Join(dir, args[1])
	switch args[0] {
	case "get":
		b, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "store-helper: cannot read record:", err)
			return 1
		}
		_, _ = os.Stdout.Write(b)
		return 0
	case "put":
		if _, err := os.Stat(filepath.Join(dir, "REFUSE-PUT")); err == nil {
			// A secret manager that lets the runner read but not write: a missing write permission.
			fmt.Fprintln(os.Stderr, "AccessDeniedException: not authorized to perform secretsmanager:PutSecretValue")
			return 1
		}
		b, err := io.ReadAll(os.Stdin)
		if err == nil {
			err = os.WriteFile(file, b, 0o600)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "store-helper: cannot write record:", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintln(os.Stderr, "store-helper: unknown verb", args[0])
		return 2
	}
}
