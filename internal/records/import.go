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

	type item struct {
		line int
		p    Payment
	}
	var (
		mu  sync.Mutex
		sum Summary
		wg  sync.WaitGroup
	)
	refuse := func(f Refusal) {
		mu.Lock()
		defer mu.Unlock()
		sum.Refused++
		if opts.Refused != nil {
			opts.Refused(f)
		}
	}
	batches := make(chan []item, opts.Workers)
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				ps := make([]Payment, len(b))
				for i, it := range b {
					ps[i] = it.p
				}
				errs := store.PutPayments(ctx, ps)
				for i, err := range errs {
					id := b[i].p.PayTransactionID
					switch {
					case err == nil:
						mu.Lock()
						sum.Imported++
						mu.Unlock()
					case errors.Is(err, ErrDuplicate):
						mu.Lock()
						sum.Duplicates++
						mu.Unlock()
					case errors.Is(err, ErrConflict), errors.Is(err, ErrOrderTaken), errors.Is(err, ErrExpired):
						refuse(Refusal{Line: b[i].line, PayTransactionID: id, Reasons: []string{err.Error()}})
					default:
						mu.Lock()
						sum.Failed++
						mu.Unlock()
						cancel(fmt.Errorf("store payment of line %d: %w", b[i].line, err))
					}
				}
			}
		}()
	}

	br := bufio.NewReaderSize(r, 64<<10)
	var (
		read  int64
		line  int
		batch []item
		rerr  error
	)
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case batches <- batch:
			batch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		b, n, tooLong, err := readLine(br, MaxLineBytes)
		read += int64(n)
		if n > 0 {
			line++
		}
		if len(bytes.TrimSpace(b)) > 0 || tooLong {
			mu.Lock()
			sum.Lines++
			mu.Unlock()
			switch p, perr := parseValid(b, tooLong); {
			case perr != nil:
				refuse(Refusal{Line: line, PayTransactionID: p.PayTransactionID, Reasons: Reasons(perr)})
			default:
				batch = append(batch, item{line: line, p: p})
				if len(batch) >= opts.BatchSize {
					send() // on failure the loop ends: the context is done
				}
			}
		}
		if opts.Progress != nil && n > 0 {
			opts.Progress(read)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("read line %d: %w", line+1, err)
			break
		}
	}
	if rerr == nil {
		send()
	}
	close(batches)
	wg.Wait()
	if rerr != nil {
		return sum, rerr
	}
	if err := context.Cause(ctx); err != nil {
		return sum, err
	}
	return sum, nil
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
