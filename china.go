package ceb179

import "time"

// China is customs' time zone: UTC+8, no daylight saving time. Calendar
// days (the byDay index, the daily cap, the operators' reports) and the
// payments' tradingTime are read in it.
var China = time.FixedZone("CST", 8*60*60)

// Day returns the calendar day of t in China, as yyyy-mm-dd.
func Day(t time.Time) string {
	return t.In(China).Format(time.DateOnly)
}

// DefaultRetention is how long records are kept unless configured otherwise:
// three years, as the E-Commerce Law requires, plus thirty days of margin.
const DefaultRetention = (3*365 + 30) * 24 * time.Hour

// MinRetention is the shortest retention a store accepts: three years.
const MinRetention = 3 * 365 * 24 * time.Hour
