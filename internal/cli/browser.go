package cli

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
)

// openSystemBrowser asks the desktop to open url, without waiting for the browser. It is used only when the person
// asks for it (-open-browser): on a server or over SSH there is no browser to open.
func openSystemBrowser(ctx context.Context, url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", url)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
