package cli

import (
	"strings"
	"testing"
)

func TestRedisOptions(t *testing.T) {
	for _, tt := range []struct {
		in   string
		addr string
		db   int
		tls  bool
		err  bool
	}{
		{in: "127.0.0.1:6379", addr: "127.0.0.1:6379"},
		{in: "redis://127.0.0.1:6390/2", addr: "127.0.0.1:6390", db: 2},
		{in: "rediss://user:secret@cache.example:6380", addr: "cache.example:6380", tls: true},
		{in: "redis://127.0.0.1:6379/not-a-db", err: true},
		{in: "http://127.0.0.1:6379", err: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			opt, err := RedisOptions(tt.in)
			if tt.err {
				if err == nil || !strings.HasPrefix(err.Error(), "--redis: ") {
					t.Fatalf("RedisOptions = %+v, %v; want an error naming --redis", opt, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opt.Addr != tt.addr || opt.DB != tt.db || (opt.TLSConfig != nil) != tt.tls {
				t.Fatalf("Addr %q DB %d TLS %v; want %q %d %v", opt.Addr, opt.DB, opt.TLSConfig != nil, tt.addr, tt.db, tt.tls)
			}
		})
	}
}
