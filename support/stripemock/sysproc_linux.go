package stripemock

import (
	"os/exec"
	"syscall"
)

// detach puts stripe-mock in its own process group, so Stop can signal it
// and anything it spawned at once, and asks the kernel to SIGKILL it if we
// die without calling Stop (a test binary killed by a timeout, kill -9).
//
// Caveat: Linux sends Pdeathsig when the thread that forked the child exits,
// not the process. The Go runtime keeps its threads alive, except that a
// goroutine which calls runtime.LockOSThread and exits without unlocking
// takes its thread with it; Start must therefore never be called from such
// a goroutine, or stripe-mock would be killed when that goroutine returns.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
}
