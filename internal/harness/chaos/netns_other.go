//go:build !linux

package chaos

import (
	"context"
	"errors"
	"net"
)

var errNoNetns = errors.New("network namespaces exist on Linux only")

type netLab struct{}

// NetnsAvailable says why processes cannot be run in network namespaces
// here (and so cannot be partitioned).
func NetnsAvailable() error { return errNoNetns }

func newNetLab(int) (*netLab, error)         { return nil, errNoNetns }
func (l *netLab) NSPath(int) string          { return "" }
func (l *netLab) ns(int) string              { return "" }
func (l *netLab) IP(int) string              { return "" }
func (l *netLab) Partition(_, _ []int) error { return errNoNetns }
func (l *netLab) Heal() error                { return errNoNetns }
func (l *netLab) Close()                     {}
func dialInNetns(func() (string, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) { return nil, errNoNetns }
}
