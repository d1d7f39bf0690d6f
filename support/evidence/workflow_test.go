package evidence

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestWorkflowLints runs actionlint, pinned as a Go tool in go.mod, on the
// GitHub Actions deploy gate, so that a broken workflow fails `make test`
// rather than the first push.
func TestWorkflowLints(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	workflow := filepath.Join(".github", "workflows", "verify.yml")
	if _, err := os.Stat(filepath.Join(root, workflow)); err != nil {
		t.Fatalf("the deploy gate %s is missing: %v", workflow, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "tool", "actionlint", "-no-color", workflow)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("actionlint found problems in %s (%v):\n%s", workflow, err, out)
	}
}
