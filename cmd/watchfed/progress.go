package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress draws a progress bar on a terminal and nothing elsewhere, so
// that logs and pipes stay clean.
type progress struct {
	w            io.Writer
	label        string
	total        int
	on           bool
	start, drawn time.Time
}

func newProgress(w io.Writer, label string, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, label: label, total: total, on: ok && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

// set shows n done, at most ten times a second.
func (p *progress) set(n int) {
	if !p.on || (time.Since(p.drawn) < 100*time.Millisecond && n < p.total) {
		return
	}
	p.drawn = time.Now()
	rate := float64(n) / max(time.Since(p.start).Seconds(), 1e-3)
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s %d (%.0f/s)   ", p.label, n, rate)
		return
	}
	const width = 30
	done := min(width, width*n/p.total)
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d (%.0f/s)   ", p.label, strings.Repeat("=", done), strings.Repeat(" ", width-done), n, p.total, rate)
}

// done ends the bar's line.
func (p *progress) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}
