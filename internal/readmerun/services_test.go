//go:build linux

package main

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
)

// mosquittoLog is Mosquitto 2.0.11's log (log_type all) of a gateway and
// then mosquitto_sub subscribing.
const mosquittoLog = `1796681927: mosquitto version 2.0.11 running
1796681980: New client connected from 127.0.0.1:35200 as gateway (p5, c1, k30).
1796681980: Received SUBSCRIBE from gateway
1796681980: 	mqttsec/gateway/reply (QoS 1)
1796681980: gateway 1 mqttsec/gateway/reply
1796681980: Sending SUBACK to gateway
1796681985: New connection from 127.0.0.1:35212 on port 1883.
1796681985: New client connected from 127.0.0.1:35212 as auto-6292323D-C395-97D8-6E82-4B1D49754C84 (p2, c1, k60).
1796681985: No will message specified.
1796681985: Sending CONNACK to auto-6292323D-C395-97D8-6E82-4B1D49754C84 (0, 0)
1796681985: Received SUBSCRIBE from auto-6292323D-C395-97D8-6E82-4B1D49754C84
1796681985: 	mqttsec/gateway/req/# (QoS 0)
1796681985: auto-6292323D-C395-97D8-6E82-4B1D49754C84 0 mqttsec/gateway/req/#
1796681985: Sending SUBACK to auto-6292323D-C395-97D8-6E82-4B1D49754C84
`

func TestSubscribedIn(t *testing.T) {
	subscribe := strings.Index(mosquittoLog, "1796681985: Received SUBSCRIBE")
	suback := strings.Index(mosquittoLog, "1796681985: Sending SUBACK")
	for _, tc := range []struct {
		name   string
		log    string
		filter string
		want   bool
	}{
		{"subscribed and acknowledged", mosquittoLog, "mqttsec/gateway/req/#", true},
		{"another client's filter", mosquittoLog, "mqttsec/gateway/reply", true},
		{"a filter nobody subscribed to", mosquittoLog, "mqttsec/gateway/req/+", false},
		{"a prefix of a subscribed filter", mosquittoLog, "mqttsec/gateway/req", false},
		{"not acknowledged yet", mosquittoLog[:suback], "mqttsec/gateway/req/#", false},
		{"only the part after the gateway", mosquittoLog[subscribe:], "mqttsec/gateway/reply", false},
		{"empty", "", "mqttsec/gateway/req/#", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := subscribedIn(tc.log, tc.filter); got != tc.want {
				t.Errorf("subscribedIn(%q) = %v, want %v", tc.filter, got, tc.want)
			}
		})
	}
}

func TestParseRedisInfo(t *testing.T) {
	body := "# Stats\r\ntotal_connections_received:227\r\ntotal_commands_processed:187796\r\n"
	reply := "$" + strconv.Itoa(len(body)) + "\r\n" + body + "\r\n"
	n, err := parseRedisInfo(bufio.NewReader(strings.NewReader(reply)), "total_connections_received")
	if err != nil || n != 227 {
		t.Errorf("parseRedisInfo = %d, %v; want 227", n, err)
	}
	if _, err := parseRedisInfo(bufio.NewReader(strings.NewReader(reply)), "missing_field"); err == nil {
		t.Error("a missing field parsed")
	}
	if _, err := parseRedisInfo(bufio.NewReader(strings.NewReader("-NOAUTH Authentication required.\r\n")), "total_connections_received"); err == nil {
		t.Error("an error reply parsed")
	}
}
