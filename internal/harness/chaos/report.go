package chaos

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// Seconds is a duration written in reports as seconds, to the millisecond.
type Seconds float64

func secondsOf(d time.Duration) Seconds {
	return Seconds(math.Round(d.Seconds()*1000) / 1000)
}

// secondsPtr is secondsOf for optional fields.
func secondsPtr(d time.Duration) *Seconds {
	s := secondsOf(d)
	return &s
}

// FaultRecord is what happened when one scheduled fault ran.
type FaultRecord struct {
	Fault
	// Injected and Healed are seconds after the workload started.
	Injected Seconds `json:"injected_s"`
	Healed   Seconds `json:"healed_s"`
	// HeightAtFault and HeightAtHeal are the network's height (the highest
	// any validator had) when the fault began and when it was healed.
	HeightAtFault uint64 `json:"height_at_fault"`
	HeightAtHeal  uint64 `json:"height_at_heal"`
	// CommitDuring is how long after the injection the network committed
	// a new height while the fault was in force; absent if it did not
	// (expected only when no side of a partition holds a quorum).
	CommitDuring *Seconds `json:"commit_during_s,omitempty"`
	// CommitAfter is how long after the heal the network committed past
	// HeightAtHeal; Recovery how long until every validator (the faulted
	// ones included) had, absent if that did not happen within the bound.
	CommitAfter *Seconds `json:"commit_after_s,omitempty"`
	Recovery    *Seconds `json:"recovery_s,omitempty"`
	// Details are kind-specific facts: the partition's sides and heights,
	// the WAL segment and cut offset, the twin's evidence, churn's heights
	// and powers.
	Details    map[string]any `json:"details,omitempty"`
	Violations []string       `json:"violations,omitempty"`
}

// Report is the outcome of a chaos run. Pass holds when Violations is empty.
type Report struct {
	Seed       int64    `json:"seed"`
	Mode       string   `json:"mode"` // "processes (network namespaces)", "processes (loopback)" or "docker"
	Validators int      `json:"validators"`
	Duration   Seconds  `json:"duration_s"`
	Elapsed    Seconds  `json:"elapsed_s"`
	Schedule   Schedule `json:"schedule"`
	Dir        string   `json:"dir,omitempty"`

	Faults []FaultRecord `json:"faults"`

	Transfers TransferStats `json:"transfers"`
	Reads     ReadStats     `json:"reads"`

	// FinalHeight is the height every node reached and was compared to.
	FinalHeight uint64 `json:"final_height"`
	// Forks counts heights at which two nodes held different blocks (or
	// app hashes), during the run or at the end.
	Forks int `json:"forks"`
	// GenesisSupply is the genesis total supply (the balances and the
	// genesis validators' stake); FinalSupply every balance plus the
	// staking pool (bonded, unbonding and burned tokens) after
	// FinalHeight, of which FinalStake is the pool.
	GenesisSupply uint64 `json:"genesis_supply"`
	FinalSupply   uint64 `json:"final_supply"`
	FinalStake    uint64 `json:"final_stake"`
	// Evidence is every equivocation committed on the chain.
	Evidence []EvidenceRecord `json:"evidence"`
	// Linearizable is porcupine's verdict on the history: "ok",
	// "illegal" or "unknown" (it timed out).
	Linearizable string  `json:"linearizable"`
	CheckTime    Seconds `json:"check_time_s"`

	Violations []string `json:"violations"`
	Pass       bool     `json:"pass"`
}

// TransferStats counts the workload's transfers.
type TransferStats struct {
	Signed       int `json:"signed"`
	Acknowledged int `json:"acknowledged"`
	// Lost are acknowledged transfers missing from the chain; Duplicated
	// those in it more than once. Both must be 0.
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	// Unacknowledged are transfers whose commit the client never saw
	// (in flight when the run ended); CommittedUnseen of those are in
	// the chain all the same.
	Unacknowledged  int   `json:"unacknowledged"`
	CommittedUnseen int   `json:"committed_unseen"`
	Submissions     int64 `json:"submissions"`
	FailedAttempts  int64 `json:"failed_attempts"`
}

// ReadStats counts the workload's reads.
type ReadStats struct {
	Recorded int   `json:"recorded"`
	Stale    int64 `json:"stale_answers"`
	Dropped  int64 `json:"dropped"`
}

// EvidenceRecord is one committed equivocation.
type EvidenceRecord struct {
	Validator   string `json:"validator"`
	VoteHeight  uint64 `json:"vote_height"`
	VoteRound   uint32 `json:"vote_round"`
	VoteType    string `json:"vote_type"`
	BlockHeight uint64 `json:"block_height"`
	// Twin says the equivocating key was held by a twin at the time; an
	// equivocation that is not a twin's is a violation (a double sign).
	Twin bool `json:"twin"`
}

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	buf, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(buf, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// Summary is the report for people: one line per fault and the verdicts.
func (r *Report) Summary() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "chaos %s: seed %d, %d validators, %s, %gs of faults (%gs in all)\n",
		verdict, r.Seed, r.Validators, r.Mode, r.Duration, r.Elapsed)
	fmt.Fprintf(&b, "%-10s %-9s %8s %6s %11s %8s %8s %9s  %s\n",
		"fault", "nodes", "at", "for", "heights", "during", "resumed", "caught up", "details")
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "%-10s %-9s %7.1fs %5.1fs %5d→%-5d %8s %8s %9s  %s\n",
			f.Kind, fmt.Sprint(f.Nodes), float64(f.Injected), float64(f.Healed-f.Injected),
			f.HeightAtFault, f.HeightAtHeal, opt(f.CommitDuring), opt(f.CommitAfter), opt(f.Recovery), details(f))
	}
	fmt.Fprintln(&b, "(heights: the network's at the fault and at the heal; during: first commit while the fault was in force;\n"+
		" resumed: first commit after the heal; caught up: every validator past the heal height)")
	t := r.Transfers
	fmt.Fprintf(&b, "transfers: %d signed, %d acknowledged, %d lost, %d duplicated; %d unacknowledged at the end (%d of them committed)\n",
		t.Signed, t.Acknowledged, t.Lost, t.Duplicated, t.Unacknowledged, t.CommittedUnseen)
	fmt.Fprintf(&b, "reads: %d recorded, %d stale answers retried, %d dropped\n", r.Reads.Recorded, r.Reads.Stale, r.Reads.Dropped)
	fmt.Fprintf(&b, "chain: %d heights, %d forks; supply %d at genesis, %d at the end (%d of it staked or burned); %d evidence committed\n",
		r.FinalHeight, r.Forks, r.GenesisSupply, r.FinalSupply, r.FinalStake, len(r.Evidence))
	fmt.Fprintf(&b, "history: %d transfers and %d reads, linearizable: %s (checked in %gs)\n",
		t.Signed, r.Reads.Recorded, r.Linearizable, r.CheckTime)
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "VIOLATION: %s\n", v)
	}
	if r.Dir != "" {
		fmt.Fprintf(&b, "files: %s\n", r.Dir)
	}
	fmt.Fprintf(&b, "replay: ledgerd chaos --seed %d --validators %d --duration %s --faults %s%s\n",
		r.Seed, r.Validators, r.Schedule.Duration, joinKinds(r.Schedule.Kinds), dockerFlag(r.Mode))
	return b.String()
}

func opt(s *Seconds) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fs", float64(*s))
}

func details(f FaultRecord) string {
	var parts []string
	switch f.Kind {
	case Partition:
		parts = append(parts, fmt.Sprintf("sides %v|%v", f.Details["side"], f.Details["other"]))
		if q, ok := f.Details["quorum_side"]; ok && q != nil {
			parts = append(parts, fmt.Sprintf("quorum %v", q))
		} else {
			parts = append(parts, "no quorum")
		}
	case WALCut:
		parts = append(parts, fmt.Sprintf("%v cut at %v of %v bytes", f.Details["segment"], f.Details["offset"], f.Details["size"]))
		if rep, _ := f.Details["repair_logged"].(bool); rep {
			parts = append(parts, "torn tail repaired")
		}
	case Churn:
		if t, ok := f.Details["target"].(int); ok && len(f.Nodes) > 0 && t != f.Nodes[0] {
			parts = append(parts, fmt.Sprintf("node%d out of the set, node%d instead", f.Nodes[0], t))
		}
		for _, name := range []string{"delegate", "undelegate"} {
			if h, ok := f.Details[name+"_height"]; ok {
				parts = append(parts, fmt.Sprintf("%s power %d at height %v (power %v)", name, f.Stake, h, f.Details[name+"_power"]))
			}
		}
	case Twin:
		if h, ok := f.Details["evidence_block"]; ok {
			parts = append(parts, fmt.Sprintf("evidence in block %v after %vs", h, f.Details["evidence_after_s"]))
		}
	}
	if len(f.Violations) > 0 {
		parts = append(parts, fmt.Sprintf("%d violation(s)", len(f.Violations)))
	}
	return strings.Join(parts, "; ")
}

func dockerFlag(mode string) string {
	if mode == modeDocker {
		return " --docker"
	}
	return ""
}
