package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// polylines parses an SVG document (failing on malformed XML) and returns
// the number of points of each polyline, by class.
func polylines(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	out := map[string]int{}
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("malformed SVG: %v\n%s", err, doc)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		if se.Name.Local != "polyline" {
			continue
		}
		var class, points string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "class":
				class = a.Value
			case "points":
				points = a.Value
			}
		}
		out[class] = len(strings.Fields(points))
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return out
}

func TestWritePlotHasOnePointPerSecond(t *testing.T) {
	r := &Report{Config: RunConfig{Nodes: 4, Rate: 1000, DurationS: 4}, Window: Window{StartS: 1, EndS: 4},
		CommittedTPS: 990, Latency: Summary{P50: 300, P99: 800}}
	for s := 0; s < 6; s++ {
		sec := Second{T: s, Submitted: 1000, Committed: int64(900 + 10*s)}
		if s != 0 && s != 5 { // nothing committed in the first and last second
			sec.LatencyP50, sec.LatencyP99 = 250+float64(s), 700+float64(s)
		}
		r.Series = append(r.Series, sec)
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, r); err != nil {
		t.Fatal(err)
	}
	got := polylines(t, buf.Bytes())
	want := map[string]int{"submitted": 6, "committed": 6, "committed-5s": 6, "p50": 4, "p99": 4}
	for class, n := range want {
		if got[class] != n {
			t.Errorf("polyline %q has %d points, want %d (all: %v)", class, got[class], n, got)
		}
	}
}

func TestWritePlotOfAnEmptyRun(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlot(&buf, &Report{Config: RunConfig{Nodes: 1}}); err != nil {
		t.Fatal(err)
	}
	got := polylines(t, buf.Bytes())
	for _, class := range []string{"submitted", "committed", "committed-5s", "p50", "p99"} {
		if n, ok := got[class]; !ok || n != 0 {
			t.Errorf("empty run: polyline %q has %d points (present %v)", class, n, ok)
		}
	}
	if strings.Contains(buf.String(), "NaN") || strings.Contains(buf.String(), "Inf") {
		t.Errorf("empty run drew non-numbers:\n%s", buf.String())
	}
}

func TestMovingMean(t *testing.T) {
	var ss []Second
	for _, c := range []int64{10, 0, 20, 0, 30} {
		ss = append(ss, Second{Committed: c})
	}
	for i, want := range []float64{10, 7.5, 12, 12.5, 50.0 / 3} {
		if got := movingMean(ss, i, 5); got != want {
			t.Errorf("movingMean at %d = %v, want %v", i, got, want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 7: 10, 1100: 2000, 2400: 2500, 4100: 5000, 9999: 10000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}
