package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotWidth   = 900
	plotHeight  = 600
	plotLeft    = 80
	plotRight   = 150 // room for the legend
	panelHeight = 210
	panel1Top   = 50
	panel2Top   = 330
)

// WritePlot draws r's per-second series as a standalone SVG image with two
// panels: committed (per second, and its 5-second centred mean) and
// submitted transfers per second above, latency p50 and p99 of the
// transfers committed in each second below. The steady-state window is
// shaded. Each series is one polyline with one point per second (latency:
// per second in which something committed), with class names "committed",
// "committed-5s", "submitted", "p50" and "p99".
func WritePlot(w io.Writer, r *Report) error {
	var b strings.Builder
	n := len(r.Series)
	span := float64(max(n, 1))
	plotW := float64(plotWidth - plotLeft - plotRight)
	x := func(t float64) float64 { return plotLeft + t/span*plotW }

	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
`, plotWidth, plotHeight, plotWidth, plotHeight)
	rate := "as fast as possible"
	if r.Config.Rate > 0 {
		rate = fmt.Sprintf("%.0f tx/s offered", r.Config.Rate)
	}
	title := fmt.Sprintf("ledgerd bench: %d nodes, %s: %.0f tx/s committed, p50 %.0f ms, p99 %.0f ms",
		r.Config.Nodes, rate, r.CommittedTPS, r.Latency.P50, r.Latency.P99)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft, escape(title))

	var maxTPS, maxLat float64
	for _, s := range r.Series {
		maxTPS = math.Max(maxTPS, math.Max(float64(s.Committed), float64(s.Submitted)))
		maxLat = math.Max(maxLat, s.LatencyP99)
	}
	tpsTop, latTop := niceCeil(maxTPS), niceCeil(maxLat)

	for _, p := range []struct {
		top   float64
		yMax  float64
		label string
	}{{panel1Top, tpsTop, "transfers per second"}, {panel2Top, latTop, "latency (ms)"}} {
		drawPanel(&b, p.top, p.yMax, p.label, x, r, n)
	}

	y1 := func(v float64) float64 { return panel1Top + panelHeight - v/tpsTop*panelHeight }
	y2 := func(v float64) float64 { return panel2Top + panelHeight - v/latTop*panelHeight }
	var sub, com, avg, p50, p99 []string
	for i, s := range r.Series {
		t := float64(s.T) + 0.5
		sub = append(sub, point(x(t), y1(float64(s.Submitted))))
		com = append(com, point(x(t), y1(float64(s.Committed))))
		avg = append(avg, point(x(t), y1(movingMean(r.Series, i, 5))))
		if s.LatencyP50 > 0 || s.LatencyP99 > 0 {
			p50 = append(p50, point(x(t), y2(s.LatencyP50)))
			p99 = append(p99, point(x(t), y2(s.LatencyP99)))
		}
	}
	lines := []struct {
		class, color, dash, label string
		pts                       []string
		legendY                   float64
	}{
		{"submitted", "#999999", "4 3", "submitted", sub, panel1Top + 10},
		{"committed", "#9ecae1", "", "committed", com, panel1Top + 30},
		{"committed-5s", "#08519c", "", "5 s mean", avg, panel1Top + 50},
		{"p50", "#2ca02c", "", "p50", p50, panel2Top + 10},
		{"p99", "#d62728", "", "p99", p99, panel2Top + 30},
	}
	for _, l := range lines {
		dash := ""
		if l.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, l.dash)
		}
		fmt.Fprintf(&b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n",
			l.class, l.color, dash, strings.Join(l.pts, " "))
		lx := float64(plotWidth - plotRight + 15)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n",
			lx, l.legendY, lx+20, l.legendY, l.color, dash)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+26, l.legendY+4, l.label)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">seconds since the load started (shaded: steady-state window; dashed line: load stops)</text>`+"\n",
		x(span/2), plotHeight-12)
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// drawPanel draws one panel's frame, shaded window, grid, y ticks, x ticks
// and the end-of-load marker.
func drawPanel(b *strings.Builder, top, yMax float64, label string, x func(float64) float64, r *Report, n int) {
	bottom := top + panelHeight
	left, right := x(0), x(float64(max(n, 1)))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#eef3fa"/>`+"\n",
		x(r.Window.StartS), top, x(r.Window.EndS)-x(r.Window.StartS), panelHeight)
	for i := 0; i <= 5; i++ {
		v := yMax * float64(i) / 5
		y := bottom - float64(i)/5*panelHeight
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", left, y, right, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, tickLabel(v))
	}
	step := xStep(n)
	for t := 0; t <= n; t += step {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(float64(t)), bottom+16, t)
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555555" stroke-dasharray="6 4"/>`+"\n",
		x(r.Config.DurationS), top, x(r.Config.DurationS), bottom)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#333333"/>`+"\n",
		left, top, right-left, panelHeight)
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n",
		left-55, top+panelHeight/2, label)
}

// movingMean is the mean committed per second over the window of w seconds
// centred on second i (shorter at the ends).
func movingMean(ss []Second, i, w int) float64 {
	lo, hi := max(0, i-w/2), min(len(ss)-1, i+w/2)
	var sum int64
	for _, s := range ss[lo : hi+1] {
		sum += s.Committed
	}
	return float64(sum) / float64(hi-lo+1)
}

// niceCeil is the smallest of 1, 2, 2.5, 5 times a power of ten at or
// above v (1 for v <= 0), so axis ticks at fifths are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// xStep spaces the x tick labels to about ten.
func xStep(n int) int {
	for _, s := range []int{1, 2, 5, 10, 15, 30, 60, 120, 300} {
		if n/s <= 12 {
			return s
		}
	}
	return 600
}

func tickLabel(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func point(x, y float64) string { return fmt.Sprintf("%.1f,%.1f", x, y) }

func escape(s string) string {
	var buf bytes.Buffer
	xml.EscapeText(&buf, []byte(s))
	return buf.String()
}
