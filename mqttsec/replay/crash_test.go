package replay

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// crashChildEnv names the store directory of TestFileStoreCrashChild.
const crashChildEnv = "MQTTSEC_REPLAY_CRASH_CHILD_DIR"

// A process killed with SIGKILL in the middle of traffic (group commits
// and compactions running) loses nothing it acknowledged, and the store
// reopens without a loss.
func TestFileStoreSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	must(t, create(t, dir).Close())
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreCrashChild$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	const killAfter = 300
	var acked []envelope.Seen
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var sender string
		var ctr uint64
		if _, err := fmt.Sscanf(lines.Text(), "acked %s %d", &sender, &ctr); err != nil {
			continue
		}
		if acked = append(acked, seen(sender, ctr)); len(acked) == killAfter {
			must(t, cmd.Process.Kill())
		}
	}
	cmd.Wait()
	if len(acked) < killAfter || strings.Contains(stderr.String(), "child:") {
		t.Fatalf("the child stopped by itself after %d messages:\n%s", len(acked), stderr.String())
	}
	s := openNoLoss(t, dir)
	defer s.Close()
	for _, m := range acked {
		refused(t, s, m)
	}
	admit(t, s, "after", 1)
	t.Logf("killed after %d acknowledged messages", len(acked))
}

// TestFileStoreCrashChild is the process TestFileStoreSurvivesSIGKILL
// kills: eight goroutines admit messages and print each one acknowledged,
// until it is killed.
func TestFileStoreCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the child process of TestFileStoreSurvivesSIGKILL")
	}
	s, err := OpenFileStore(dir, FileStoreOptions{CompactAfter: 2048})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	s.NotifyLoss(func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	})
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for c := uint64(1); c < 1<<40; c++ {
				m := seen(fmt.Sprint("s", g), c)
				if err := s.Admit(ctx, m); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(1)
				}
				out.Lock()
				fmt.Printf("acked %s %d\n", m.Sender, m.Counter)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}
