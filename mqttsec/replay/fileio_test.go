package replay

import (
	"errors"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// A write or fsync that fails fails the Admits it carried (refused, never
// acted on), twice in a row here; then the store recovers by itself,
// without being reopened: the next Admit cuts the log back to what was
// committed and commits. Reopened, it reports no loss, refuses what was
// admitted, and the failed messages left nothing behind.
func TestFileStoreRecoversFromIOErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *fault
	}{
		{"frame write fails", &fault{op: "write", times: 2}},
		{"frame written in part", &fault{op: "write", times: 2, partial: 7}},
		{"header write fails", &fault{op: "write", header: true, times: 2}},
		{"fsync fails", &fault{op: "sync", times: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := createAdmitted(t, dir, 3)
			injectFaults(s, tc.fault.fail)
			for _, sender := range []string{"x", "y"} {
				err := s.Admit(ctx, seen(sender, 1))
				if !errors.Is(err, errInjected) || errors.Is(err, envelope.ErrReplayed) {
					t.Fatalf("Admit while the disk fails = %v, want the I/O error", err)
				}
			}
			if tc.fault.hits != tc.fault.times {
				t.Fatalf("%d faults hit, want %d", tc.fault.hits, tc.fault.times)
			}
			admit(t, s, "a", 4) // recovered
			admit(t, s, "b", 1)
			must(t, s.Close())

			r := openNoLoss(t, dir)
			defer r.Close()
			for _, m := range []envelope.Seen{seen("a", 1), seen("a", 4), seen("b", 1)} {
				refused(t, r, m)
			}
			for _, sender := range []string{"x", "y"} {
				if err := r.Check(ctx, seen(sender, 1)); err != nil {
					t.Fatalf("a failed Admit left %s 1 in the log: %v", sender, err)
				}
			}
		})
	}
}

// Every Admit whose record was in a group commit that failed gets the
// error, not only the one that wrote it.
func TestFileStoreFailedCommitFailsEveryAdmitInIt(t *testing.T) {
	s := create(t, t.TempDir())
	defer s.Close()
	// Four Admits join one batch before any of them commits it, as
	// concurrent ones do while another commit holds the log.
	var batches []*batch
	for c := uint64(1); c <= 4; c++ {
		b, err := s.enqueue(ctx, seen("a", c))
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	injectFaults(s, (&fault{op: "sync", times: 1}).fail)
	for i, b := range batches {
		if err := s.commit(b); !errors.Is(err, errInjected) {
			t.Fatalf("Admit %d of the failed batch = %v, want the I/O error", i+1, err)
		}
	}
	admit(t, s, "a", 5)
}

// A compaction that fails leaves the store working and its state whole;
// the next one succeeds.
func TestFileStoreFailedCompaction(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *fault
	}{
		{"header", &fault{op: "write", header: true, times: 1}},
		{"fsync", &fault{op: "sync", times: 1}},
		{"cut", &fault{op: "truncate", times: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := createAdmitted(t, dir, 5)
			injectFaults(s, tc.fault.fail)
			if err := s.Compact(); !errors.Is(err, errInjected) {
				t.Fatalf("Compact = %v, want the I/O error", err)
			}
			admit(t, s, "a", 6)
			crash(s)
			r := openNoLoss(t, dir)
			for c := uint64(1); c <= 6; c++ {
				refused(t, r, seen("a", c))
			}
			compact(t, r)
			admit(t, r, "a", 7)
			must(t, r.Close())
			r = openNoLoss(t, dir)
			defer r.Close()
			refused(t, r, seen("a", 7))
		})
	}
}
