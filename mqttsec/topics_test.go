package mqttsec_test

import (
	"testing"

	"github.com/mqttsec/mqttsec/mqttsec"
)

func TestTopics(t *testing.T) {
	for _, prefix := range []string{"", "site-1/secure", "site-1/secure/"} {
		tp := mqttsec.Topics{Prefix: prefix}
		m, ok := tp.Method("gw", tp.Request("gw", "doors/open"))
		if !ok || m != "doors/open" {
			t.Errorf("prefix %q: Method = %q, %v", prefix, m, ok)
		}
		if _, ok := tp.Method("gw2", tp.Request("gw", "x")); ok {
			t.Errorf("prefix %q: another server's request topic matched", prefix)
		}
		if _, ok := tp.Method("gw", tp.Reply("gw")); ok {
			t.Errorf("prefix %q: a reply topic parsed as a request", prefix)
		}
		sender, topic, ok := tp.EventTopic(tp.Event("door-3", "state/open"))
		if !ok || sender != "door-3" || topic != "state/open" {
			t.Errorf("prefix %q: EventTopic = %q %q %v", prefix, sender, topic, ok)
		}
		for _, bad := range []string{tp.Reply("x"), tp.Request("gw", "m"), "other/x/evt/y", tp.Event("a", "")} {
			if _, _, ok := tp.EventTopic(bad); ok {
				t.Errorf("prefix %q: %q parsed as an event topic", prefix, bad)
			}
		}
	}
}
