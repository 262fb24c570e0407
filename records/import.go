package records

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ImportOptions tune Import. The zero value is usable.
type ImportOptions struct {
	// BatchSize is the number of payments handed to the store at once
	// (default 100).
	BatchSize int
	// Workers is the number of batches written concurrently (default 4).
	Workers int
	// Progress, when set, is called from the reading goroutine with the
	// number of input bytes consumed so far.
	Progress func(read int64)
	// Refused, when set, is called once per refused line, never
	// concurrently.
	Refused func(Refusal)
}

// Refusal is a line that Import did not store, and why.
type Refusal struct {
	// Line is the line number in the input, from 1.
	Line int `json:"line"`
	// PayTransactionID is the payment's payTransactionId, when it could be read.
	PayTransactionID string `json:"payTransactionId,omitempty"`
	// Reasons are the broken rules or the conflict; they name fields, never
	// payment data.
	Reasons []string `json:"reasons"`
}

// Summary counts what Import did.
type Summary struct {
	// Lines is the number of non-blank lines read.
	Lines int `json:"lines"`
	// Imported is the number of payments stored by this run.
	Imported int `json:"imported"`
	// Duplicates is the number of payments already stored with the same data.
	Duplicates int `json:"duplicates"`
	// Refused is the number of lines refused: unreadable, breaking a field
	// rule, reusing a payTransactionId with other data, or holding an order
	// of another payment.
	Refused int `json:"refused"`
	// Failed is the number of payments not stored because the store failed;
	// running the import again retries them.
	Failed int `json:"failed"`
}

// Import reads payments from r, one JSON object per line in the shape of
// ParsePayment, validates every line and writes the valid ones to store in
// batches. Blank lines are skipped. A line that cannot be read or breaks a
// field rule is refused with its reasons and the import goes on; payments
// already stored count as duplicates, so an interrupted import can simply be
// run again.
//
// Import stops early, with an error, when the context ends or the store
// fails (as opposed to refusing a payment); the summary then counts what was
// done until then.
func Import(ctx context.Context, r io.Reader, store Store, opts ImportOptions) (Summary, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	im := &importer{store: store, opts: opts, cancel: cancel, batches: make(chan []importItem, opts.Workers)}
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Go(func() { im.write(ctx) })
	}
	rerr := im.read(ctx, r)
	close(im.batches)
	wg.Wait()
	if rerr != nil {
		return im.sum, rerr
	}
	return im.sum, context.Cause(ctx)
}

// importItem is a valid payment and the line it came from.
type importItem struct {
	line int
	p    Payment
}

// importer is one run of Import: the reader hands batches to the writers
// over batches; the counts are shared under mu.
type importer struct {
	store   Store
	opts    ImportOptions
	cancel  context.CancelCauseFunc
	batches chan []importItem

	mu  sync.Mutex
	sum Summary
}

// count adds one to the summary count c.
func (im *importer) count(c *int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	*c++
}

// refuse counts a refused line and reports it.
func (im *importer) refuse(f Refusal) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.sum.Refused++
	if im.opts.Refused != nil {
		im.opts.Refused(f)
	}
}

// write stores the batches it receives until they end. A store failure
// other than a refusal ends the whole import.
func (im *importer) write(ctx context.Context) {
	for b := range im.batches {
		ps := make([]Payment, len(b))
		for i, it := range b {
			ps[i] = it.p
		}
		for i, err := range im.store.PutPayments(ctx, ps) {
			switch {
			case err == nil:
				im.count(&im.sum.Imported)
			case errors.Is(err, ErrDuplicate):
				im.count(&im.sum.Duplicates)
			case errors.Is(err, ErrConflict), errors.Is(err, ErrOrderTaken), errors.Is(err, ErrExpired):
				im.refuse(Refusal{Line: b[i].line, PayTransactionID: b[i].p.PayTransactionID, Reasons: []string{err.Error()}})
			default:
				im.count(&im.sum.Failed)
				im.cancel(fmt.Errorf("store payment of line %d: %w", b[i].line, err))
			}
		}
	}
}

// read reads, validates and batches the lines of r until it ends, fails
// or ctx ends, and hands the last batch on. It returns only read errors.
func (im *importer) read(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		read  int64
		line  int
		batch []importItem
	)
	send := func() {
		if len(batch) == 0 {
			return
		}
		select {
		case im.batches <- batch:
			batch = nil
		case <-ctx.Done(): // the loop ends: the context is done
		}
	}
	for ctx.Err() == nil {
		b, n, tooLong, err := readLine(br, MaxLineBytes)
		read += int64(n)
		if n > 0 {
			line++
		}
		if len(bytes.TrimSpace(b)) > 0 || tooLong {
			im.count(&im.sum.Lines)
			p, perr := parseValid(b, tooLong)
			switch {
			case perr != nil:
				im.refuse(Refusal{Line: line, PayTransactionID: p.PayTransactionID, Reasons: Reasons(perr)})
			default:
				batch = append(batch, importItem{line: line, p: p})
				if len(batch) >= im.opts.BatchSize {
					send()
				}
			}
		}
		if im.opts.Progress != nil && n > 0 {
			im.opts.Progress(read)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", line+1, err)
		}
	}
	send()
	return nil
}

// parseValid parses and validates one line.
func parseValid(b []byte, tooLong bool) (Payment, error) {
	if tooLong {
		return Payment{}, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, MaxLineBytes)
	}
	p, err := ParsePayment(b)
	if err != nil {
		return Payment{}, err
	}
	return p, p.Validate()
}

// readLine reads one line of at most limit bytes, without its line end. n
// counts every byte consumed, the line end included. A longer line is
// consumed to its end and reported with tooLong. err is io.EOF after the
// last line.
func readLine(br *bufio.Reader, limit int) (line []byte, n int, tooLong bool, err error) {
	for {
		chunk, e := br.ReadSlice('\n')
		n += len(chunk)
		if !tooLong {
			if len(line)+len(chunk) > limit+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e == io.EOF && n > 0 {
			e = nil // a last line without a line end; EOF comes next call
		}
		return bytes.TrimRight(line, "\r\n"), n, tooLong, e
	}
}
