package light

import (
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
)

// ErrVerification is wrapped by every error that means a node's
// answer does not check out against what the client trusts: a lying or
// broken node, never a network hiccup.
var ErrVerification = errors.New("verification failed")

// ErrStale is wrapped by the error of a verification whose newest
// verified header is older than Trust.MaxAge: the state it proves may be
// out of date, because the nodes asked hide newer blocks or because the
// chain has made none.
var ErrStale = errors.New("newest verified header too old")

// Trust is what a light client trusts: a genesis document it got from a
// source it believes (a file, or a hash it pinned), and, as it verifies,
// the headers it came to trust. The genesis validators sign heights 1 and
// 2; from there the client follows the set from header to header (each
// header names the set of its height and of the next), sequentially or
// skipping ahead when more than a third of a trusted set signed a later
// header (see VerifiedHeader and docs/decisions.md, "The light client
// across validator-set changes").
//
// A Trust is safe for concurrent use and must not be copied after its
// first use. Set its fields before that.
type Trust struct {
	ChainID     string
	GenesisHash crypto.Hash
	GenesisTime ledger.Timestamp
	// Validators is the genesis validator set: the set of heights 1 and 2.
	Validators *ledger.ValidatorSet
	// TrustingPeriod is the farthest, in heights, the client skips from a
	// trusted header in one step: a target farther away is reached
	// through trusted headers at most this far apart. Zero means
	// DefaultTrustingPeriod.
	TrustingPeriod uint64
	// Sequential makes the client verify every header between the
	// trusted one and the target, never skipping.
	Sequential bool
	// OnStep, when set, is told of every header the client comes to trust
	// (one call at a time).
	OnStep func(Step)
	// Persist, when set, is given the newest trusted header each time a
	// verification advances it, so that a later run can start there
	// (RestoreState). When it fails, it is given the state again after
	// the next verification.
	Persist func(*TrustedState) error
	// MaxAge, when positive, is how old the newest verified header may be
	// for VerifiedAccount: a signed header proves a state existed, not
	// that it is the latest, so a node can serve an old one as its latest.
	// Zero accepts any age.
	MaxAge time.Duration
	// Now is the clock header ages are measured by; nil means time.Now.
	Now func() time.Time

	light lightStore
}

// NewTrust trusts doc, with the trusting period TrustingPeriodOf(doc).
func NewTrust(doc *genesis.Doc) (*Trust, error) {
	vs, err := doc.ValidatorSet()
	if err != nil {
		return nil, err
	}
	return &Trust{ChainID: doc.ChainID, GenesisHash: doc.Hash(), GenesisTime: doc.GenesisTime, Validators: vs,
		TrustingPeriod: TrustingPeriodOf(doc)}, nil
}

// Clock returns the time by the trust's clock (Now, or time.Now).
func (t *Trust) Clock() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Errorf returns an error wrapping ErrVerification: what a provider
// reports when an answer does not check out.
func Errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerification, fmt.Sprintf(format, args...))
}

func verifyErr(format string, args ...any) error { return Errorf(format, args...) }
