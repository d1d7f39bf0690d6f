//go:build unix && !linux

package stripemock

import (
	"os/exec"
	"syscall"
)

// detach puts stripe-mock in its own process group so Stop can signal it
// and anything it spawned. Only Linux has Pdeathsig: elsewhere a parent
// killed without calling Stop leaves stripe-mock running.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
