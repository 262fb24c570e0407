package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ceb179/ceb179"
)

// DefaultDocsBaseURL is where the messages' runbook links point unless the
// template's NotifyDocsBaseUrl (or the configuration) says otherwise: the
// folder holding operations.md.
const DefaultDocsBaseURL = "https://github.com/ceb179/ceb179/blob/main/docs/"

// Message is what one robot is sent: a title and a markdown body.
type Message struct {
	// Title is the short title (DingTalk's notification text, Feishu's card
	// header).
	Title string
	// Markdown is the body.
	Markdown string
	// Alarm is true when a change in it went to ALARM (red), false when
	// they all closed (green).
	Alarm bool
	// Changes is how many alarm changes the message reports.
	Changes int
}

// RunbookURL returns the link to the runbook section of docs/operations.md
// named runbook, under base.
func RunbookURL(base, runbook string) string {
	if base == "" {
		base = DefaultDocsBaseURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if runbook == "" {
		return base + "operations.md#5-告警与处置--alarms-and-runbooks"
	}
	return base + "operations.md#" + runbook
}

// Compose writes the message for changes (one or more, oldest first),
// within limit bytes of markdown. A single change gets the whole story; a
// burst is merged into one message with one line per change, nothing left
// out unless the limit forces it, and then the message says how many were
// left out and where to see them.
func Compose(changes []Change, docsBase string, limit int) Message {
	m := Message{Changes: len(changes)}
	for _, c := range changes {
		if c.State == StateAlarm {
			m.Alarm = true
		}
	}
	if len(changes) == 1 {
		m.Title, m.Markdown = single(changes[0], docsBase)
	} else {
		m.Title, m.Markdown = merged(changes, docsBase)
	}
	m.Markdown = fit(m.Markdown, limit)
	return m
}

// stateWord is how a message names a state.
func stateWord(s string) string {
	switch s {
	case StateAlarm:
		return "🔴 告警"
	case StateOK:
		return "🟢 恢复"
	case StateInsufficient:
		return "⚪ 数据不足"
	}
	return s
}

func single(c Change, docsBase string) (string, string) {
	rb := runbookOf(c)
	var title string
	switch c.State {
	case StateOK:
		title = fmt.Sprintf("ceb179 已恢复：%s", c.Name)
	default:
		title = fmt.Sprintf("ceb179 %s：%s", strings.TrimPrefix(stateWord(c.State), "🔴 "), c.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s %s\n\n", stateWord(c.State), c.Name)
	fmt.Fprintf(&b, "**%s**\n\n", rb.Summary)
	if c.State == StateOK {
		fmt.Fprintf(&b, "- 事件结束：%s → %s，于 %s\n", c.OldState, c.State, when(c.At))
	} else {
		fmt.Fprintf(&b, "- 状态：%s → %s，自 %s 起\n", c.OldState, c.State, when(c.At))
	}
	if cond := condition(c); cond != "" {
		fmt.Fprintf(&b, "- 条件：%s\n", cond)
	}
	if c.Value != nil {
		fmt.Fprintf(&b, "- 最新值：%s\n", strconv.FormatFloat(*c.Value, 'f', -1, 64))
	}
	for _, d := range c.Details {
		fmt.Fprintf(&b, "- %s\n", d)
	}
	fmt.Fprintf(&b, "- 处置手册：[%s](%s)\n", orName(c.Runbook, "alarms"), RunbookURL(docsBase, c.Runbook))
	if c.State != StateOK {
		fmt.Fprintf(&b, "- 先运行：%s\n", commands(rb.First))
	}
	if c.Description != "" {
		fmt.Fprintf(&b, "\n> %s\n", c.Description)
	}
	return title, b.String()
}

func merged(changes []Change, docsBase string) (string, string) {
	open := 0
	names := map[string]bool{}
	for _, c := range changes {
		names[c.Name] = true
	}
	latest := map[string]string{}
	for _, c := range changes {
		latest[c.Name] = c.State
	}
	for _, s := range latest {
		if s == StateAlarm {
			open++
		}
	}
	title := fmt.Sprintf("ceb179 告警汇总：%d 次变化，%d 个告警，%d 个仍在告警", len(changes), len(names), open)
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s\n\n", title)
	fmt.Fprintf(&b, "短时间内的多次告警变化合并为一条消息（群机器人每分钟最多 20 条）。\n\n")
	for _, c := range changes {
		fmt.Fprintf(&b, "- %s %s **%s** %s", hhmmss(c.At), stateWord(c.State), c.Name, runbookOf(c).Summary)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "；%s", d)
		}
		fmt.Fprintf(&b, " [处置](%s)\n", RunbookURL(docsBase, c.Runbook))
	}
	var first []string
	seen := map[string]bool{}
	for _, c := range changes {
		if latest[c.Name] != StateAlarm {
			continue
		}
		for _, cmd := range runbookOf(c).First {
			if !seen[cmd] {
				seen[cmd] = true
				first = append(first, cmd)
			}
		}
	}
	if len(first) > 0 {
		fmt.Fprintf(&b, "\n仍在告警，先运行：%s\n", commands(first))
	} else {
		fmt.Fprintf(&b, "\n以上告警均已恢复。\n")
	}
	return title, b.String()
}

// fit cuts md to limit bytes at a line boundary and says how many lines
// were left out. A limit of 0 or less keeps everything.
func fit(md string, limit int) string {
	if limit <= 0 || len(md) <= limit {
		return md
	}
	lines := strings.SplitAfter(md, "\n")
	const tail = "\n…另有 %d 行未列出（超出机器人的消息长度限制），完整内容见告警邮件或运行 `ceb179 status`。\n"
	for keep := len(lines) - 1; keep > 0; keep-- {
		out := strings.Join(lines[:keep], "") + fmt.Sprintf(tail, len(lines)-keep)
		if len(out) <= limit {
			return out
		}
	}
	// Not even one line fits: cut inside it, on a rune boundary.
	cut := limit
	for cut > 0 && !utf8.RuneStart(md[cut]) {
		cut--
	}
	return md[:cut]
}

func condition(c Change) string {
	if c.Comparison == "" {
		return ""
	}
	op := map[string]string{
		"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": "≥",
		"LessThanThreshold": "<", "LessThanOrEqualToThreshold": "≤",
	}[c.Comparison]
	if op == "" {
		op = c.Comparison
	}
	what := c.Metric
	if what == "" {
		what = "指标表达式"
	} else if c.Namespace != "" {
		what = c.Namespace + " " + c.Metric
	}
	if len(c.Dimensions) > 0 {
		what += "（" + strings.Join(c.Dimensions, ", ") + "）"
	}
	s := strings.TrimSpace(fmt.Sprintf("%s %s", what, c.Statistic)) + fmt.Sprintf(" %s %s", op, strconv.FormatFloat(c.Threshold, 'f', -1, 64))
	if c.Period > 0 {
		s += fmt.Sprintf("，周期 %d 秒", c.Period)
	}
	return s
}

// when renders a time in China time, as the on-call team reads it.
func when(t time.Time) string {
	if t.IsZero() {
		return "未知时间"
	}
	return t.In(ceb179.China).Format("2006-01-02 15:04:05") + "（北京时间）"
}

func hhmmss(t time.Time) string {
	if t.IsZero() {
		return "--:--:--"
	}
	return t.In(ceb179.China).Format("15:04:05")
}

func commands(cmds []string) string {
	q := make([]string, len(cmds))
	for i, c := range cmds {
		q[i] = "`" + c + "`"
	}
	return strings.Join(q, "、")
}

func orName(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
