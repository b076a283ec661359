package client

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// heightPoll is how often WaitForHeight asks for the status when it cannot
// watch new heads over a WebSocket.
const heightPoll = 200 * time.Millisecond

// WaitForHeight blocks until the node reports a committed block at height
// h or above, and returns that status. It watches new heads over a
// WebSocket (asking for the status once subscribed, so a block committed in
// between is not missed); where no WebSocket can be had it asks for the
// status every 200ms. ctx bounds the wait.
func (c *Client) WaitForHeight(ctx context.Context, h uint64) (*api.Status, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	if uint64(st.LatestHeight) >= h {
		return st, nil
	}
	if ws, err := c.DialWS(ctx); err == nil {
		defer ws.Close()
		if sub, err := ws.SubscribeNewHeads(ctx); err == nil {
			var st api.Status
			if err := ws.Call(ctx, api.MethodStatus, &st); err != nil {
				return nil, err
			}
			for uint64(st.LatestHeight) < h {
				head, err := sub.NextHead(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil, fmt.Errorf("wait for height %d: %w", h, ctx.Err())
					}
					break // the connection ended: poll instead
				}
				st.LatestHeight = head.Height
			}
			if uint64(st.LatestHeight) >= h {
				return c.Status(ctx)
			}
		}
	}
	tick := time.NewTicker(heightPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for height %d (the node is at %d): %w", h, st.LatestHeight, ctx.Err())
		case <-tick.C:
		}
		if st, err = c.Status(ctx); err != nil {
			return nil, err
		}
		if uint64(st.LatestHeight) >= h {
			return st, nil
		}
	}
}
