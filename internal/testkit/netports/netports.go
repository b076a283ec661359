// Package netports finds free TCP port ranges on loopback for tests that
// start nodes on fixed, pre-agreed ports.
package netports

import (
	"errors"
	"fmt"
	"net"
)

// Range returns a base port such that base..base+n-1 were all free on
// 127.0.0.1 (TCP and UDP) when checked. The ports are released before it
// returns, so another process could take one in between; callers that
// start many nodes retry on a bind failure.
func Range(n int) (int, error) {
	for try := 0; try < 100; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n > 65000 {
			continue
		}
		if free(base, n) {
			return base, nil
		}
	}
	return 0, errors.New("netports: no free port range")
}

func free(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}
