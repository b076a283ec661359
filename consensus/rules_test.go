package consensus

import "testing"

// lockOnA0 brings v3 (not the proposer of rounds 0-2) to round 1 locked
// on A from round 0, with A also its valid value.
const lockOnA0 = `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
prevote 1/0 A from=v0,v1,v2            -> precommit 1/0 A
precommit 1/0 nil from=v0,v1,v2        -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
state                                  -> state 1/1 propose locked=0/A valid=0/A
`

// polkaBInRound1WithoutProposal brings v3 to round 2, unlocked, having
// seen a polka for B in round 1 without B's proposal.
const polkaBInRound1WithoutProposal = `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 nil from=v0,v1,v2          -> precommit 1/0 nil
precommit 1/0 nil from=v0,v1,v2        -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
timeout propose 1/1                    -> prevote 1/1 nil
prevote 1/1 B from=v0,v1,v2            -> timeout prevote 1/1
timeout prevote 1/1                    -> precommit 1/1 nil
precommit 1/1 nil from=v0,v1,v2        -> timeout precommit 1/1
timeout precommit 1/1                  -> timeout propose 1/2
`

// TestUponRules runs one script per behaviour of each upon-rule and
// timeout, comparing the effects of every event exactly.
func TestUponRules(t *testing.T) {
	tests := []struct {
		name   string
		self   int
		script string
	}{
		// StartRound, L11-L21.
		{"start: a non-proposer schedules the propose timeout", 3, `
start 1                                -> timeout propose 1/0
state                                  -> state 1/0 propose locked=-1/nil valid=-1/nil
`},
		{"start: a proposer without a valid value requests one and proposes it", 0, `
start 1                                -> request 1/0; timeout propose 1/0
value 1/0 A                            -> proposal 1/0 A pol=-1
value 1/0 B                            -> error stale
`},
		{"start: a proposer re-proposes its valid value with the round it was found", 1, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
prevote 1/0 A from=v0,v2,v3            -> precommit 1/0 A
precommit 1/0 nil from=v0,v2,v3        -> timeout precommit 1/0
timeout precommit 1/0                  -> proposal 1/1 A pol=0; timeout propose 1/1
`},
		{"start: a value arriving after the propose timeout is stale", 0, `
start 1                                -> request 1/0; timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
value 1/0 A                            -> error stale
`},
		{"start: a non-validator follows rounds without voting", -1, `
start 1                                -> timeout propose 1/0
proposal 1/0 A
prevote 1/0 A from=v0,v1,v2
state                                  -> state 1/0 precommit locked=0/A valid=0/A
precommit 1/0 A from=v0,v1,v2          -> decide 1/0 A sigs=3
`},

		// L22.
		{"L22: prevotes a valid proposal when not locked", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
state                                  -> state 1/0 prevote locked=-1/nil valid=-1/nil
`},
		{"L22: prevotes nil for an invalid proposal", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 Xbad                      -> prevote 1/0 nil
`},
		{"L22: prevotes nil for a new value when locked on another", 3, lockOnA0 + `
proposal 1/1 B                         -> prevote 1/1 nil
`},
		{"L22: prevotes the value it is locked on", 3, lockOnA0 + `
proposal 1/1 A                         -> prevote 1/1 A
`},
		{"L22: fires only in the propose step", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
proposal 1/0 A
`},
		{"L22: a proposal kept before the height starts fires at the start", 3, `
proposal 1/0 A
start 1                                -> timeout propose 1/0; prevote 1/0 A
`},
		{"L22: refuses a proposal from anyone but the round's proposer", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A from=v1                 -> error wrong-proposer
proposal 1/0 A                         -> prevote 1/0 A
proposal 1/0 A                         -> error duplicate
`},

		// L28.
		{"L28: prevotes a value whose polka is at least as new as the lock", 3, polkaBInRound1WithoutProposal + `
proposal 1/2 B pol=1                   -> prevote 1/2 B
`},
		{"L28: prevotes the locked value re-proposed with an older polka", 3, lockOnA0 + `
timeout propose 1/1                    -> prevote 1/1 nil
prevote 1/1 nil from=v0,v1,v2          -> precommit 1/1 nil
precommit 1/1 nil from=v0,v1,v2        -> timeout precommit 1/1
timeout precommit 1/1                  -> timeout propose 1/2
proposal 1/2 A pol=0                   -> prevote 1/2 A
`},
		{"L28: prevotes nil when locked later than the polka of another value", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 B from=v0,v1,v2            -> timeout prevote 1/0
timeout prevote 1/0                    -> precommit 1/0 nil
precommit 1/0 nil from=v0,v1,v2        -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
proposal 1/1 A                         -> prevote 1/1 A
prevote 1/1 A from=v0,v1,v2            -> precommit 1/1 A
precommit 1/1 nil from=v0,v1,v2        -> timeout precommit 1/1
timeout precommit 1/1                  -> timeout propose 1/2
proposal 1/2 B pol=0                   -> prevote 1/2 nil
`},
		{"L28: waits for the polka the proposal claims", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 nil from=v0,v1,v2          -> precommit 1/0 nil
precommit 1/0 nil from=v0,v1,v2        -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
proposal 1/1 B pol=0
prevote 1/0 B from=v3
state                                  -> state 1/1 propose locked=-1/nil valid=-1/nil
`},
		{"L28: prevotes nil for an invalid value despite its polka", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 Xbad from=v0,v1,v2         -> timeout prevote 1/0
timeout prevote 1/0                    -> precommit 1/0 nil
precommit 1/0 nil from=v0,v1,v2        -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
proposal 1/1 Xbad pol=0                -> prevote 1/1 nil
`},

		// L34.
		{"L34: schedules the prevote timeout once on 2f+1 prevotes for anything", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
prevote 1/0 A from=v0
prevote 1/0 nil from=v1
prevote 1/0 B from=v2                  -> timeout prevote 1/0
prevote 1/0 A from=v3
`},
		{"L34: fires after a step change when the prevotes came earlier", 3, `
start 1                                -> timeout propose 1/0
prevote 1/0 A from=v0
prevote 1/0 nil from=v1
prevote 1/0 B from=v2
timeout propose 1/0                    -> prevote 1/0 nil; timeout prevote 1/0
`},

		// L36.
		{"L36: locks on and precommits a proposal with a polka", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
prevote 1/0 A from=v0,v1,v2            -> precommit 1/0 A
state                                  -> state 1/0 precommit locked=0/A valid=0/A
prevote 1/0 A from=v3
`},
		{"L36: after precommitting nil only updates the valid value", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
prevote 1/0 A from=v3
prevote 1/0 nil from=v0
prevote 1/0 A from=v1                  -> timeout prevote 1/0
timeout prevote 1/0                    -> precommit 1/0 nil
prevote 1/0 A from=v2
state                                  -> state 1/0 precommit locked=-1/nil valid=0/A
`},
		{"L36: waits for the proposal of a polka it saw first", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 A from=v0,v1,v2            -> timeout prevote 1/0
proposal 1/0 A                         -> precommit 1/0 A
`},
		{"L36: never locks on an invalid value", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 Xbad                      -> prevote 1/0 nil
prevote 1/0 Xbad from=v0,v1,v2         -> timeout prevote 1/0
state                                  -> state 1/0 prevote locked=-1/nil valid=-1/nil
`},
		{"L36: acts once per round, not once per value, when equivocators make a second polka", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
proposal 1/0 B
prevote 1/0 A from=v0,v1,v2            -> precommit 1/0 A
prevote 1/0 B from=v0,v1               -> evidence prevote 1/0 v0 A/B; evidence prevote 1/0 v1 A/B
prevote 1/0 B from=v3
state                                  -> state 1/0 precommit locked=0/A valid=0/A
`},
		{"L36: after precommitting nil records only the first polka of the round", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
proposal 1/0 B
timeout prevote 1/0                    -> precommit 1/0 nil
prevote 1/0 B from=v0,v1,v2
prevote 1/0 A from=v0,v1               -> evidence prevote 1/0 v0 A/B; evidence prevote 1/0 v1 A/B
prevote 1/0 A from=v3
state                                  -> state 1/0 precommit locked=-1/nil valid=0/B
`},
		{"L36: relocks on a newer polka", 3, lockOnA0 + `
proposal 1/1 B                         -> prevote 1/1 nil
prevote 1/1 B from=v0,v1,v2            -> precommit 1/1 B
state                                  -> state 1/1 precommit locked=1/B valid=1/B
`},

		// L44.
		{"L44: precommits nil on a polka for nil", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 nil from=v0,v1
prevote 1/0 nil from=v2                -> precommit 1/0 nil
`},
		{"L44: fires after a step change when the nil polka came earlier", 3, `
start 1                                -> timeout propose 1/0
prevote 1/0 nil from=v0,v1,v2
proposal 1/0 A                         -> prevote 1/0 A; precommit 1/0 nil
`},

		// L47.
		{"L47: schedules the precommit timeout once on 2f+1 precommits for anything", 3, `
start 1                                -> timeout propose 1/0
precommit 1/0 A from=v0
precommit 1/0 nil from=v1
precommit 1/0 B from=v2                -> timeout precommit 1/0
precommit 1/0 nil from=v3
`},
		{"L47: counts only the current round", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
prevote 1/0 nil from=v0,v1,v2          -> precommit 1/0 nil
precommit 1/0 nil from=v0,v1,v2        -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
precommit 1/0 nil from=v3
precommit 1/1 nil from=v0
`},

		// L49.
		{"L49: decides a proposal with 2f+1 precommits", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
precommit 1/0 A from=v0,v1
precommit 1/0 A from=v2                -> decide 1/0 A sigs=3
state                                  -> state 1/0 decided locked=-1/nil valid=-1/nil
precommit 1/0 A from=v3                -> error stale
`},
		{"L49: waits for the proposal of the precommits", 3, `
start 1                                -> timeout propose 1/0
precommit 1/0 A from=v0,v1,v2          -> timeout precommit 1/0
proposal 1/0 A                         -> decide 1/0 A sigs=3
`},
		{"L49: decides a value committed in an earlier round while in a later one", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
timeout propose 1/0                    -> error stale
prevote 1/0 nil from=v0,v1,v2          -> precommit 1/0 nil
precommit 1/0 nil from=v0
precommit 1/0 A from=v1
precommit 1/0 A from=v2                -> timeout precommit 1/0
timeout precommit 1/0                  -> timeout propose 1/1
precommit 1/0 A from=v3                -> decide 1/0 A sigs=3
`},
		{"L49: never decides an invalid value", 3, `
start 1                                -> timeout propose 1/0
proposal 1/0 Xbad                      -> prevote 1/0 nil
precommit 1/0 Xbad from=v0,v1,v2       -> timeout precommit 1/0
state                                  -> state 1/0 prevote locked=-1/nil valid=-1/nil
`},

		// L55.
		{"L55: skips to a round where f+1 validators sent messages", 3, `
start 1                                -> timeout propose 1/0
prevote 1/2 nil from=v0
prevote 1/2 nil from=v1                -> timeout propose 1/2
`},
		{"L55: counts the proposal as a message of its round", 3, `
start 1                                -> timeout propose 1/0
proposal 1/2 B
prevote 1/2 nil from=v0                -> timeout propose 1/2; prevote 1/2 B
`},
		{"L55: does not count messages of lower rounds or one validator twice", 3, lockOnA0 + `
prevote 1/0 nil from=v3
prevote 1/2 nil from=v0
precommit 1/2 nil from=v0
state                                  -> state 1/1 propose locked=0/A valid=0/A
`},
		{"L55: jumps to the highest such round and proposes there", 3, `
start 1                                -> timeout propose 1/0
prevote 1/2 nil from=v0
prevote 1/3 nil from=v1
prevote 1/3 nil from=v2                -> request 1/3; timeout propose 1/3
`},

		// Timeouts, L57, L61, L65.
		{"L57: the propose timeout prevotes nil in the propose step only", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
timeout propose 1/0                    -> error stale
`},
		{"L57: a timeout of another round or height is stale", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/1                    -> error stale
timeout propose 2/0                    -> error stale
`},
		{"L61: the prevote timeout precommits nil", 3, `
start 1                                -> timeout propose 1/0
timeout propose 1/0                    -> prevote 1/0 nil
timeout prevote 1/0                    -> precommit 1/0 nil
timeout prevote 1/0                    -> error stale
`},
		{"L65: the precommit timeout starts the next round from any step", 3, `
start 1                                -> timeout propose 1/0
timeout precommit 1/0                  -> timeout propose 1/1
timeout precommit 1/1                  -> timeout propose 1/2
timeout precommit 1/1                  -> error stale
`},

		// Vote keeping and heights.
		{"votes: a duplicate changes nothing and an equivocation becomes evidence once", 3, `
start 1                                -> timeout propose 1/0
prevote 1/0 A from=v0
prevote 1/0 A from=v0                  -> error duplicate
prevote 1/0 B from=v0                  -> evidence prevote 1/0 v0 A/B
prevote 1/0 C from=v0
prevote 1/0 C from=v0                  -> error duplicate
prevote 1/0 B from=v1,v2
state                                  -> state 1/0 propose locked=-1/nil valid=-1/nil
`},
		{"votes: messages for the next height are kept until it starts", 3, `
start 1                                -> timeout propose 1/0
proposal 2/0 A
precommit 2/0 A from=v0,v1,v2
proposal 1/0 A                         -> prevote 1/0 A
precommit 1/0 A from=v0,v1,v2          -> decide 1/0 A sigs=3
start 2                                -> timeout propose 2/0; decide 2/0 A sigs=3
`},
		{"votes: messages two heights ahead are refused", 3, `
start 1                                -> timeout propose 1/0
prevote 3/0 A from=v0                  -> error too-far-ahead
proposal 3/0 A                         -> error too-far-ahead
`},
		{"votes: a validator may run at most two rounds ahead", 3, `
start 1                                -> timeout propose 1/0
prevote 1/5 nil from=v0
precommit 1/5 nil from=v0
prevote 1/7 nil from=v0
prevote 1/9 nil from=v0                -> error too-far-ahead
prevote 1/9 nil from=v1
prevote 1/9 nil from=v2                -> timeout propose 1/9
prevote 1/12 nil from=v0
`},
		{"heights: start out of sequence is refused", 3, `
start 2                                -> error sequence
start 1                                -> timeout propose 1/0
start 1                                -> error stale
start 2                                -> error sequence
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newHarness(t, tc.self).run(tc.script)
		})
	}
}
