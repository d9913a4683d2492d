package mqttsec

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// PahoV5's default back-off waits 100 ms to 1 s before every reconnection
// attempt, however many failed before: never autopaho's fixed 10 s, never
// growing without bound, and not the same for every attempt (jitter).
func TestReconnectBackoffIsBoundedWithJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for attempt := 1; attempt <= 200; attempt++ {
		d := reconnectBackoff(attempt)
		if d < 100*time.Millisecond || d > time.Second {
			t.Fatalf("attempt %d waits %v, want 100 ms to 1 s", attempt, d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("%d distinct waits in 200 attempts: no jitter", len(seen))
	}
}

// Paho 3.1.1's reconnection intervals left at its defaults are bounded
// to 500 ms to 1 s, a bound of each transport's own; intervals the
// caller chose stay.
func TestPromptReconnectsV3(t *testing.T) {
	bounds := map[time.Duration]bool{}
	for range 50 {
		o := mqtt.NewClientOptions()
		promptReconnects(o)
		if o.MaxReconnectInterval < 500*time.Millisecond || o.MaxReconnectInterval > time.Second ||
			o.ConnectRetryInterval != o.MaxReconnectInterval {
			t.Fatalf("intervals %v and %v, want one bound of 500 ms to 1 s", o.MaxReconnectInterval, o.ConnectRetryInterval)
		}
		bounds[o.MaxReconnectInterval] = true
	}
	if len(bounds) < 5 {
		t.Fatalf("%d distinct bounds for 50 transports: no jitter", len(bounds))
	}
	o := mqtt.NewClientOptions().SetMaxReconnectInterval(3 * time.Second).SetConnectRetryInterval(2 * time.Second)
	promptReconnects(o)
	if o.MaxReconnectInterval != 3*time.Second || o.ConnectRetryInterval != 2*time.Second {
		t.Fatalf("chosen intervals changed to %v and %v", o.MaxReconnectInterval, o.ConnectRetryInterval)
	}
}
