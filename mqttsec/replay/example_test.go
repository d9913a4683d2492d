package replay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// A FileStore remembers what it admitted across a restart: a message
// captured before the restart and replayed after it is refused. Create it
// once, open it on every later start, and give it to
// mqttsec.Config.Replay.
func ExampleOpenFileStore() {
	dir, err := os.MkdirTemp("", "replay-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	msg := envelope.Seen{Sender: "door-controller-7", Counter: 1001, IssuedAt: time.Now()}

	store, err := replay.CreateFileStore(dir, replay.FileStoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("first delivery:", store.Admit(ctx, msg))
	store.Close() // the gateway stops

	store, err = replay.OpenFileStore(dir, replay.FileStoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println("replayed after the restart refused:", errors.Is(store.Admit(ctx, msg), envelope.ErrReplayed))
	// Output:
	// first delivery: <nil>
	// replayed after the restart refused: true
}

// A FileStore whose files were lost or damaged opens all the same, reports
// the loss, and refuses every message issued before it noticed the loss
// (plus the clock skew): any of them may have been accepted before. Later
// messages are accepted.
func ExampleFileStore_NotifyLoss() {
	dir, err := os.MkdirTemp("", "replay-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	captured := envelope.Seen{Sender: "door-controller-7", Counter: 1001, IssuedAt: time.Now()}

	store, err := replay.CreateFileStore(dir, replay.FileStoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("first delivery:", store.Admit(ctx, captured))
	store.Close()
	os.Remove(filepath.Join(dir, "replay.log")) // lost

	store, err = replay.OpenFileStore(dir, replay.FileStoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	var noticed time.Time
	store.NotifyLoss(func(err error) { // called at once for a loss found on opening
		var loss *replay.LossError
		if errors.As(err, &loss) {
			fmt.Println("lost:", loss.What)
			noticed = loss.Noticed
		}
	})
	fmt.Println("replay refused:", errors.Is(store.Admit(ctx, captured), envelope.ErrReplayed))
	later := envelope.Seen{Sender: "door-controller-7", Counter: 1002,
		IssuedAt: noticed.Add(envelope.DefaultMaxClockSkew + time.Millisecond)}
	fmt.Println("a message issued after the loss plus the skew:", store.Admit(ctx, later))
	// Output:
	// first delivery: <nil>
	// lost: replay.log is missing
	// replay refused: true
	// a message issued after the loss plus the skew: <nil>
}

// A FileCounter never hands out a counter twice, even across restarts and
// crashes: it resumes above every counter it may have used. Create it once,
// open it on every later start, and give it to mqttsec.Config.Counter.
func ExampleOpenFileCounter() {
	dir, err := os.MkdirTemp("", "counter-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "counter")

	c, err := replay.CreateFileCounter(path, 1, 100) // first counter 1, reserve 100 at a time
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := c.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := c.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("before the restart:", a, b)
	c.Close() // the process stops

	c, err = replay.OpenFileCounter(path, 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := c.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("after the restart, above the reservation:", n)
	c.Close()
	// Output:
	// before the restart: 1 2
	// after the restart, above the reservation: 101
}
