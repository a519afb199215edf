// The dashboard's figures: how each is read out of the API's Figures, shown, compared with the period
// before and written to CSV, under the small-cell rule.
//
// Text of an element with data-figure="<field>" (what browser tests parse):
//   - a count (residents, party_members, matters_raised, ..., residents_by_residence_type.registered,
//     organizations_by_category.volunteer_team): an integer with "," thousands separators ("1,080");
//   - a rate (report_rate, settlement_rate, on_time_rate, satisfaction_rate, reach_rate, read_rate): a
//     percentage with one decimal ("70.3%");
//   - points_posted, points_redeemed, service_hours, median_days_to_settle: up to one decimal, with ","
//     thousands separators ("1,115", "19.5"); units are outside the element;
//   - "已隐藏" (English: "Hidden") when the small-cell rule hides it: the element then holds the marker
//     with data-test="suppressed";
//   - "—" when there is nothing to show (a rate or median with no whole).
// Fields inside a group are named "<group>.<key>", e.g. residents_by_residence_type.floating.
// The change (data-test="change") reads e.g. "较上期 ↑ 增加 12（+5.0%）", "较上期 ↓ 降低 2.3 个百分点",
// "较上期 → 持平", "较上期 变化未知", "上期无数据" (the period before had no data, or 0 of it), or, for a flow
// (matters, points, hours, broadcasts and their rates) while the period is under way, no rise or fall but
// "上期全期 1,234（本期尚未结束）".
import type { components } from '@/api/client'

export type Figures = components['schemas']['DashboardFigures']
export type Dashboard = components['schemas']['Dashboard']
export type Child = components['schemas']['DashboardChild']
export type Freshness = components['schemas']['Freshness']

export type Kind = 'count' | 'rate' | 'total' | 'days'

/** The kind of a field (for a grouped field, its group's). */
export function kindOf(field: string): Kind {
  if (field.endsWith('_rate')) return 'rate'
  if (field === 'points_posted' || field === 'points_redeemed' || field === 'service_hours') return 'total'
  if (field === 'median_days_to_settle') return 'days'
  return 'count'
}

// What a rate (or the median) is made of: if one of these counts is hidden, so is it.
const PARTS: Record<string, string[]> = {
  report_rate: ['party_members_reported', 'party_members'],
  settlement_rate: ['matters_settled', 'matters_raised'],
  on_time_rate: ['matters_settled'],
  satisfaction_rate: ['matters_rated'],
  median_days_to_settle: ['matters_settled'],
  reach_rate: ['broadcast_reached', 'broadcast_targeted'],
  read_rate: ['broadcast_read', 'broadcast_reached'],
}
// A rate's whole, where the API gives it: a null rate over a known, non-zero whole can only be a hidden part
// (on time of settled, for instance).
const WHOLE: Record<string, string> = {
  report_rate: 'party_members', settlement_rate: 'matters_raised', on_time_rate: 'matters_settled',
  satisfaction_rate: 'matters_rated',
  reach_rate: 'broadcast_targeted', read_rate: 'broadcast_reached',
}

export type Shown =
  | { state: 'value'; value: number; text: string }
  | { state: 'suppressed' }
  | { state: 'none' }

/** A field's raw value: number, null (hidden or no whole), or undefined (absent). */
export function raw(f: Figures | null | undefined, field: string): number | null | undefined {
  if (!f) return undefined
  const [group, key] = field.split('.')
  if (key !== undefined) {
    const g = (f as Record<string, unknown>)[group] as Record<string, number | null> | undefined
    if (!g) return undefined
    if (key in g) return g[key]
    // A category no record has is not in the group: none of it — unless the rule hides another of the
    // group, when an absent one is hidden too (its 0 would tell the hidden ones apart).
    return Object.values(g).some((v) => v === null) ? null : 0
  }
  return (f as Record<string, unknown>)[field] as number | null | undefined
}

const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const ONE = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })

export function format(kind: Kind, v: number): string {
  if (kind === 'rate') return `${(Math.round(v * 1000) / 10).toFixed(1)}%`
  if (kind === 'count') return COUNT.format(v)
  return ONE.format(v)
}

/** A field as shown: its value, hidden by the small-cell rule, or nothing to show. */
export function show(f: Figures | null | undefined, field: string): Shown {
  const v = raw(f, field)
  const kind = kindOf(field)
  if (typeof v === 'number') return { state: 'value', value: v, text: format(kind, v) }
  if (v === undefined) return { state: 'none' }         // not in the reply at all
  const parts = PARTS[field]
  if (!parts) return { state: 'suppressed' }            // a null count or total: the rule hides it
  if (parts.some((p) => raw(f, p) === null)) return { state: 'suppressed' }
  const whole = WHOLE[field] ? raw(f, WHOLE[field]) : undefined
  if (typeof whole === 'number' && whole > 0) return { state: 'suppressed' }
  return { state: 'none' }
}

// Flows: counted within the period (and the rates and median built on them). While the period is under way
// they are "so far", and comparing them with the whole period before would read as a fall; stocks (people,
// members, organisations, workers, the report rate) are counted at a day and compare fine.
const FLOWS = new Set(['points_posted', 'points_redeemed', 'service_hours', 'matters_raised', 'matters_settled',
  'matters_rated', 'settlement_rate', 'on_time_rate', 'satisfaction_rate', 'median_days_to_settle',
  'broadcast_targeted', 'broadcast_reached', 'broadcast_read', 'reach_rate', 'read_rate'])
export const isFlow = (field: string) => FLOWS.has(field.split('.')[0])

/** Whether a period has any data at all: some count or amount not 0 (a hidden one is data). */
export function hasData(f: Figures | null | undefined): boolean {
  if (!f) return false
  return Object.entries(f).some(([k, v]) => kindOf(k) !== 'rate' && k !== 'median_days_to_settle'
    && v !== undefined && (typeof v === 'number' ? v !== 0 : v === null))
}

export type Change =
  | { known: false }
  | { known: true; kind: Kind; delta: number; pct: number | null }
  | { known: 'noPrevious' }                       // nothing to compare with: the period before had no data (or 0)
  | { known: 'soFar'; previous: Shown }           // a flow of a period under way: the whole previous one instead

/** The change of a field on the period before: unknown where either side is not a value; for a flow while
 *  the period is under way (`current`), the previous period's whole figure instead. */
export function change(cur: Figures | null | undefined, prev: Figures | null | undefined, field: string,
                       current = false): Change {
  if (!hasData(prev)) return { known: 'noPrevious' }
  const b = show(prev, field)
  const kind = kindOf(field)
  const prevZero = (kind === 'count' || kind === 'total') && b.state === 'value' && b.value === 0
  if (current && isFlow(field)) return prevZero ? { known: 'noPrevious' } : { known: 'soFar', previous: b }
  const a = show(cur, field)
  if (a.state !== 'value' || b.state !== 'value') return { known: false }
  const delta = a.value - b.value
  if (prevZero && delta !== 0) return { known: 'noPrevious' }
  return { known: true, kind, delta, pct: kind === 'rate' || b.value === 0 ? null : delta / b.value }
}

/** The change as words: "较上期 ↑ 增加 12（+5.0%）" (t: the page's translate function). */
export function changeText(c: Change, t: (k: string, p?: Record<string, unknown>) => string): string {
  if (c.known === 'noPrevious') return t('dashboard.change.noPrevious')
  if (c.known === 'soFar') {
    const p = c.previous
    const prev = p.state === 'value' ? p.text : p.state === 'suppressed' ? t('dashboard.suppressed') : '—'
    return t('dashboard.change.soFar', { prev })
  }
  if (!c.known) return t('dashboard.change.unknownText')
  const tiny = c.kind === 'rate' ? Math.abs(c.delta) < 0.0005 : Math.abs(c.delta) < 0.05
  if (tiny) return t('dashboard.change.sameText')
  const up = c.delta > 0
  const arrow = up ? '↑' : '↓'
  if (c.kind === 'rate') {
    const pp = (Math.round(Math.abs(c.delta) * 1000) / 10).toFixed(1)
    return t('dashboard.change.rateText', { arrow, word: t(up ? 'dashboard.change.upRate' : 'dashboard.change.downRate'), pp })
  }
  const abs = format(c.kind, Math.abs(c.delta))
  const rel = `${up ? '+' : '−'}${(Math.round(Math.abs(c.pct ?? 0) * 1000) / 10).toFixed(1)}%`
  return t('dashboard.change.countText', { arrow, word: t(up ? 'dashboard.change.up' : 'dashboard.change.down'), abs, rel })
}

// ---- the drill-down table's columns (also the CSV's) ----
/** The table's figure columns; label keys under dashboard.field. */
export const TABLE_FIELDS: { field: string; labelKey: string }[] = [
  { field: 'residents', labelKey: 'residents' },
  { field: 'party_members', labelKey: 'party_members' },
  { field: 'report_rate', labelKey: 'report_rate' },
  { field: 'organizations', labelKey: 'organizations' },
  { field: 'organizations_by_category.volunteer_team', labelKey: 'volunteer_team' },
  { field: 'points_posted', labelKey: 'points_posted' },
  { field: 'service_hours', labelKey: 'service_hours' },
  { field: 'matters_raised', labelKey: 'matters_raised' },
  { field: 'matters_settled', labelKey: 'matters_settled' },
  { field: 'settlement_rate', labelKey: 'settlement_rate' },
  { field: 'on_time_rate', labelKey: 'on_time_rate' },
  { field: 'satisfaction_rate', labelKey: 'satisfaction_rate' },
  { field: 'median_days_to_settle', labelKey: 'median_days_to_settle' },
  { field: 'reach_rate', labelKey: 'reach_rate' },
  { field: 'read_rate', labelKey: 'read_rate' },
]

/** Sort key of a figure: values in order, then "nothing to show", then hidden — whichever the direction. */
export function sortRank(s: Shown): number { return s.state === 'value' ? 0 : s.state === 'none' ? 1 : 2 }

// ---- CSV ----
const FORMULA = /^[=+\-@\t\r]/

/** One CSV cell: a leading formula character neutralised with ', quoted where needed. */
export function csvCell(v: string): string {
  let s = v
  if (FORMULA.test(s)) s = "'" + s
  if (/[",\r\n]/.test(s)) s = '"' + s.replace(/"/g, '""') + '"'
  return s
}

/** A figure as a CSV cell: the plain number (no separators; a rate as "70.3%"), "已隐藏" when hidden,
 *  empty when there is nothing to show. */
export function csvFigure(f: Figures | null | undefined, field: string): string {
  const s = show(f, field)
  if (s.state === 'suppressed') return '已隐藏'
  if (s.state === 'none') return ''
  const kind = kindOf(field)
  if (kind === 'rate') return format('rate', s.value)
  if (kind === 'count') return String(Math.round(s.value))
  return String(Math.round(s.value * 10) / 10)
}

/** UTF-8 with a BOM, CRLF line ends. */
export function csvText(rows: string[][]): string {
  return '\ufeff' + rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n'
}

export function download(text: string, filename: string) {
  const blob = new Blob([text], { type: 'text/csv;charset=utf-8' })
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

// ---- dates (Asia/Shanghai) ----
export function todayShanghai(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
}

export function clock(d: Date): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d)
}

export function dateTime(iso: string, lang: string): string {
  return new Date(iso).toLocaleString(lang === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai', hour12: false })
}

/** "3 分钟前" / "3 minutes ago" from seconds. */
export function ago(seconds: number, lang: string): string {
  const rtf = new Intl.RelativeTimeFormat(lang === 'en' ? 'en' : 'zh-CN', { numeric: 'auto' })
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return rtf.format(-s, 'second')
  if (s < 3600) return rtf.format(-Math.floor(s / 60), 'minute')
  if (s < 86400) return rtf.format(-Math.floor(s / 3600), 'hour')
  return rtf.format(-Math.floor(s / 86400), 'day')
}

/** A duration in words ("2 小时" / "2 hours"), for the age of a gap. */
export function duration(seconds: number, lang: string): string {
  const unit = (n: number, u: 'second' | 'minute' | 'hour' | 'day') =>
    new Intl.NumberFormat(lang === 'en' ? 'en' : 'zh-CN', { style: 'unit', unit: u, unitDisplay: 'long' }).format(n)
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return unit(s, 'second')
  if (s < 3600) return unit(Math.floor(s / 60), 'minute')
  if (s < 86400) return unit(Math.floor(s / 3600), 'hour')
  return unit(Math.floor(s / 86400), 'day')
}

export type Verdict = 'ok' | 'quiet' | 'cut'
export type VerdictWhy = 'down' | 'gap' | 'silent' | 'quiet' | 'ok'
const QUIET_AFTER = 3600       // s without a fact before a child is quiet (or, with no link seen, possibly cut)
const GAP_AFTER = 300          // s a missing batch may take to arrive before it counts

/** Why a child looks as it does: its link down, a batch missing for long, no link seen and nothing for an
 *  hour, or (link up) nothing for an hour; else fine. A child linked some other way (by shovel, or a
 *  parent whose broker lists no link for it) shows no link yet sends facts: that alone is fine. */
export function verdictWhy(f: Freshness): VerdictWhy {
  const silent = f.seconds_since_last_fact == null || f.seconds_since_last_fact > QUIET_AFTER
  if (f.link === 'down') return 'down'
  if ((f.missing ?? 0) > 0 && (f.oldest_gap_seconds ?? 0) > GAP_AFTER) return 'gap'
  if (silent && (f.link === 'absent' || f.link === 'unknown' || !f.link)) return 'silent'
  if (silent) return 'quiet'
  return 'ok'
}
/** 正常 / 安静（链路正常，但超过1小时无新数据） / 可能中断（链路中断、批次缺失过久，或未见链路且超过1小时无新数据）. */
export function verdict(f: Freshness): Verdict {
  const why = verdictWhy(f)
  return why === 'ok' ? 'ok' : why === 'quiet' ? 'quiet' : 'cut'
}
