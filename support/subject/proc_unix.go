//go:build unix

package subject

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the subject in a process group of its own, so that a
// timeout kills it and everything it started (curl, node) at once.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
