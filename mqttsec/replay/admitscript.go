package replay

import (
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

// admitSource is the check-and-update of a sender's window that Redis runs
// atomically. The script's comments give the key's layout: the script
// writes it, and RedisStore.window reads it for Check.
//
//go:embed admit.lua
var admitSource string

var admitScript = redis.NewScript(admitSource)

// Admit implements envelope.ReplayStore: one script that Redis runs
// atomically (admit.lua), in one round trip, so replicas admitting one
// sender's messages at once never conflict and never retry.
func (s *RedisStore) Admit(ctx context.Context, m envelope.Seen) error {
	var ctr, iat [8]byte
	binary.BigEndian.PutUint64(ctr[:], m.Counter)
	binary.BigEndian.PutUint64(iat[:], uint64(m.IssuedAt.UnixMilli()))
	least := s.keep(m)
	n, err := admitScript.Run(ctx, s.rdb, []string{s.prefix + m.Sender},
		ctr[:], iat[:], s.width, least.Milliseconds(), maxKeep.Milliseconds()).Int()
	switch {
	case err != nil:
		return err
	case n == 0:
		return envelope.ErrReplayed
	case n < 0:
		return fmt.Errorf("%w: redis window", ErrCorrupt)
	}
	return nil
}
