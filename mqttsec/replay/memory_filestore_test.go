package replay_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// A FileStore's windows are a MemoryStore's: its options reach them, and
// its Stats are theirs.
func TestFileStoreForgetsAsMemoryStore(t *testing.T) {
	now := time.Now()
	opt := replay.FileStoreOptions{MaxSenders: 2, Now: func() time.Time { return now }}
	s := must[*replay.FileStore](t)(replay.CreateFileStore(t.TempDir(), opt))
	defer s.Close()
	for i, id := range []string{"a", "b"} {
		iat := now.Add(time.Duration(i) * time.Second)
		if err := s.Admit(ctx, envelope.Seen{Sender: id, Counter: 1, IssuedAt: iat, ExpiresAt: iat.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute + time.Millisecond) // "a" has expired, "b" not
	if err := s.Admit(ctx, envelope.Seen{Sender: "c", Counter: 1, IssuedAt: now}); err != nil {
		t.Fatal(err)
	}
	want := replay.MemoryStats{Senders: 2, MaxSenders: 2, ForgottenExpired: 1, Buckets: 8}
	if got := s.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// A FileStore that forgot a sender live refuses that sender's messages
// after a restart too, whether the floor came back from a snapshot or the
// store forgot the sender again as it loaded its log.
func TestFileStoreForgottenSenderAfterRestart(t *testing.T) {
	for _, compact := range []bool{false, true} {
		name := "log"
		if compact {
			name = "snapshot"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			opt := replay.FileStoreOptions{MaxSenders: 2}
			s := must[*replay.FileStore](t)(replay.CreateFileStore(dir, opt))
			base := time.Now().Truncate(time.Millisecond) // the log keeps milliseconds
			at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
			for i, id := range []string{"a", "b", "c"} {
				if err := s.Admit(ctx, envelope.Seen{Sender: id, Counter: 5, IssuedAt: at(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if st := s.Stats(); st.ForgottenLive != 1 {
				t.Fatalf("Stats = %+v, want one sender forgotten live", st)
			}
			if compact {
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = must[*replay.FileStore](t)(replay.OpenFileStore(dir, opt))
			defer s.Close()
			for _, c := range []uint64{5, 6} {
				if err := s.Admit(ctx, envelope.Seen{Sender: "a", Counter: c, IssuedAt: at(0)}); !errors.Is(err, envelope.ErrReplayed) {
					t.Fatalf("a's counter %d, issued with its forgotten message, after a restart: %v", c, err)
				}
			}
			if err := s.Admit(ctx, envelope.Seen{Sender: "a", Counter: 6, IssuedAt: at(10)}); err != nil {
				t.Fatalf("a's next message after a restart: %v", err)
			}
		})
	}
}
