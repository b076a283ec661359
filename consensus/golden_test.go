package consensus

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	lt "github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestGoldenEventEncodings pins the WAL's event encoding byte for byte: a
// node restarted on a newer binary must replay the WAL an older one wrote.
func TestGoldenEventEncodings(t *testing.T) {
	enc := func(ev Event) []byte {
		b, err := EncodeEvent(ev)
		if err != nil {
			t.Fatalf("encode %s: %v", ev, err)
		}
		return b
	}
	reencode := func(b []byte) ([]byte, error) {
		ev, err := DecodeEvent(b)
		if err != nil {
			return nil, err
		}
		return EncodeEvent(ev)
	}
	blk := lt.GoldenBlock()
	lt.CheckGolden(t, []lt.GoldenEncoding{
		{Name: "new height", Got: enc(EventNewHeight{Height: 1<<40 + 5}), Size: 10, SHA256: "0fe91149ed04df82b51c154ca43ebf6b9c19d59c28437d553d2aa3249d55b80b", Decode: reencode},
		{Name: "proposal", Got: enc(EventProposal{Proposal: lt.GoldenProposal(), Block: blk}), Size: 1203, SHA256: "53cea3b0826380c86b7ee22706938915bc49842fb2c62f275d902fd37c9151ec", Decode: reencode},
		{Name: "vote", Got: enc(EventVote{Vote: lt.GoldenVote(ledger.Precommit, lt.GoldenHash(0x40))}), Size: 134, SHA256: "55ec8b81dfd9b09fbfc6f1943da7304d44b9b91658d9204984499936df4ecc6a", Decode: reencode},
		{Name: "timeout", Got: enc(EventTimeout{Height: 42, Round: 300, Kind: TimeoutPrecommit}), Size: 15, SHA256: "7a5edcb68095b032751cf041c29da8a6891ee5d0ea3e85aed5dc43f7fb6de85c", Decode: reencode},
		{Name: "propose value", Got: enc(EventProposeValue{Height: 42, Round: 3, Block: blk}), Size: 1044, SHA256: "af5cbfdc92011462b9d7b3eff490b86c65b54a2c898d6169fd36af1fe86ed5af", Decode: reencode},
	})
}
