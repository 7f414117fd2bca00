package ledger

// InFlight is how many one-account look-ups go out before the next waits.
const InFlight = inFlight

// Waiting is how many look-ups wait for a shared call.
func Waiting(l *Client) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Busy is how many one-account look-ups are in flight, alone or shared: a
// goroutine serving shared calls counts until it has exited its loop.
func Busy(l *Client) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy
}
