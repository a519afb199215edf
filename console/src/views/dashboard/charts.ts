// What the dashboard's trend, composition and map charts share: the roll-up and subtree queries, periods
// and dates in Shanghai, a cell that is a figure or suppressed (never 0 for suppressed), a series carried
// over a split or merge onto its successors, and the words for dimension values.
import { api, call, type components } from '@/api/client'
import { i18n } from '@/i18n'

export type Rollups = components['schemas']['Rollups']
export type RollupPoint = components['schemas']['RollupPoint']
export type SubtreeNode = components['schemas']['SubtreeNode']
export type DashboardChild = components['schemas']['DashboardChild']
export type Figures = components['schemas']['DashboardFigures']
export type Boundaries = components['schemas']['Boundaries']
export type Period = 'day' | 'month' | 'year'

// -- queries ----------------------------------------------------------------------------------------

export interface RollupQuery { metric: string; node: string; period: Period; start: string; end: string; group: string }

export async function rollup(q: RollupQuery): Promise<Rollups> {
  return await call(api.GET('/api/v1/rollups', { params: { query: q } })) as Rollups
}

export async function subtree(node: string): Promise<SubtreeNode[]> {
  return await call(api.GET('/api/v1/rollups/nodes', { params: { query: { node } } })) as SubtreeNode[]
}

export async function boundaries(node: string): Promise<Boundaries> {
  return await call(api.GET('/api/v1/rollups/boundaries', { params: { query: { node } } })) as Boundaries
}

// -- codes ------------------------------------------------------------------------------------------

export const CODE_LENGTHS = [4, 6, 9, 12, 15]
/** The length of a node's children's codes (a district's streets: 9), or null below a grid. */
export function childLength(code: string): number | null {
  return CODE_LENGTHS.find((n) => n > code.length) ?? null
}

// -- dates (ISO yyyy-mm-dd, as the instance's zone, Asia/Shanghai, names them) -----------------------

export function today(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
}
const utc = (iso: string) => new Date(`${iso}T00:00:00Z`)
const iso = (d: Date) => d.toISOString().slice(0, 10)
export function addDays(day: string, n: number): string {
  const d = utc(day)
  d.setUTCDate(d.getUTCDate() + n)
  return iso(d)
}
/** The first day of the month `n` months before the month of `day`. */
export function monthStart(day: string, n = 0): string {
  const d = utc(day)
  return iso(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - n, 1)))
}
/** The last day of the period that starts on `start`. */
export function periodEnd(period: Period, start: string): string {
  if (period === 'day') return start
  if (period === 'month') return addDays(monthStart(start, -1), -1)
  return `${start.slice(0, 4)}-12-31`
}
/** The periods from the one holding `start` to the one holding `end`, as the roll-ups number them. */
export function periods(period: Period, start: string, end: string): { start: string; end: string }[] {
  const out: { start: string; end: string }[] = []
  let p = period === 'day' ? start : period === 'month' ? monthStart(start) : `${start.slice(0, 4)}-01-01`
  while (p <= end && out.length < 1000) {
    const e = periodEnd(period, p)
    out.push({ start: p, end: e })
    p = addDays(e, 1)
  }
  return out
}

const isEn = () => (i18n.global.locale as unknown as { value: string }).value === 'en'
/** A period as an axis label: 2026-03 (month), 03-05 (day), 2026 (year). */
export function periodLabel(period: Period, start: string): string {
  return period === 'day' ? start.slice(5) : period === 'month' ? start.slice(0, 7) : start.slice(0, 4)
}
/** A period in words, for a tooltip: 2026年3月 / March 2026, 2026年3月5日 / 5 March 2026. */
export function periodWords(period: Period, start: string): string {
  const d = utc(start)
  const opts: Intl.DateTimeFormatOptions = period === 'day' ? { year: 'numeric', month: 'long', day: 'numeric' }
    : period === 'month' ? { year: 'numeric', month: 'long' } : { year: 'numeric' }
  return d.toLocaleDateString(isEn() ? 'en-GB' : 'zh-CN', { ...opts, timeZone: 'UTC' })
}
export function dayWords(day: string): string { return periodWords('day', day) }

// -- cells ------------------------------------------------------------------------------------------

/** One figure: a number, or suppressed (value null), or nothing (value null: no such node then, no whole). */
export interface Cell { value: number | null; suppressed: boolean }
export const NONE: Cell = { value: null, suppressed: false }
export const ZERO: Cell = { value: 0, suppressed: false }

export function cellOf(p: RollupPoint | undefined, measure: 'n' | 'total'): Cell {
  if (!p) return ZERO
  if (p.suppressed) return { value: null, suppressed: true }
  const v = measure === 'n' ? p.n : p.total
  return v === null || v === undefined ? { value: null, suppressed: true } : { value: v, suppressed: false }
}

/** Each series' cells over `ps`, keyed by the series' key (a child's code or a dimension value). */
export function cellsByKey(data: Rollups, ps: { start: string }[], measure: 'n' | 'total'): Map<string, Cell[]> {
  const out = new Map<string, Cell[]>()
  for (const s of data.series ?? []) {
    const at = new Map((s.points ?? []).map((p) => [p.period_start, p]))
    out.set(s.key ?? '', ps.map((p) => cellOf(at.get(p.start), measure)))
  }
  return out
}

/** a + b: suppressed if either is; nothing if both are nothing. */
export function add(a: Cell, b: Cell): Cell {
  if (a.suppressed || b.suppressed) return { value: null, suppressed: true }
  if (a.value === null) return b
  if (b.value === null) return a
  return { value: a.value + b.value, suppressed: false }
}

/** part / whole: suppressed if either is; nothing where the whole is 0 or nothing. */
export function ratio(part: Cell, whole: Cell): Cell {
  if (part.suppressed || whole.suppressed) return { value: null, suppressed: true }
  if (!whole.value || part.value === null) return NONE
  return { value: part.value / whole.value, suppressed: false }
}

// -- splits and merges ------------------------------------------------------------------------------

/**
 * A child's cells over `ps` with its boundary changes applied: nothing before it existed, and from the
 * period holding its valid_to on, what it had in that period plus what its successors had (each carried
 * on over its own later change), so a split community's line goes on as the sum of its parts and a merged
 * one's as the node it went into. `own(code)` gives a node's own cells (zeros if it sent none).
 * Returns the cells and the index of the first carried-on period (null if none).
 *
 * The successors come from the figures, which a child sends: each node is worked out once (`memo`, to
 * share across the children of one chart and one metric), a successor already on the way down (a cycle)
 * adds nothing, and the chain stops MAX_CHAIN changes down, so no list of successors can make this blow up.
 */
export type Carried = { cells: Cell[]; from: number | null }
const MAX_CHAIN = 8
export function carriedOn(code: string, ps: { start: string; end: string }[], byCode: Map<string, SubtreeNode>,
                          own: (code: string) => Cell[], memo: Map<string, Carried> = new Map(),
                          path: Set<string> = new Set()): Carried {
  const known = memo.get(code)
  if (known) return known
  const node = byCode.get(code)
  const mine = own(code)
  let cells = ps.map((p, i) => (node?.valid_from && p.end < node.valid_from ? NONE : mine[i] ?? ZERO))
  const successors = [...new Set(node?.successors ?? [])].filter((s) => s !== code && !path.has(s))
  const done = (r: Carried) => { memo.set(code, r); return r }
  if (!node?.valid_to || !successors.length || path.size >= MAX_CHAIN) {
    // Retired without successors: nothing after the period it ended in.
    if (node?.valid_to) cells = cells.map((c, i) => (ps[i].start >= node.valid_to! ? NONE : c))
    return done({ cells, from: null })
  }
  const to = node.valid_to
  const from = ps.findIndex((p) => p.end >= to)
  if (from < 0) return done({ cells, from: null })
  path.add(code)
  const theirs = successors.map((s) => carriedOn(s, ps, byCode, own, memo, path).cells)
  path.delete(code)
  cells = cells.map((c, i) => {
    if (i < from) return c
    let sum: Cell = ps[i].start < to ? c : NONE      // its own part of the period it ended in
    for (const t of theirs) sum = add(sum, t[i] ?? ZERO)
    return sum
  })
  return done({ cells, from })
}

export interface Change { code: string; name: string; on: string; kind: 'split' | 'merge' | 'retired'; into: { code: string; name: string }[] }

/** The children that ended between `start` and `end`: split, merged (or renumbered) into another, or retired. */
export function changes(children: SubtreeNode[], byCode: Map<string, SubtreeNode>, start: string, end: string): Change[] {
  const name = (c: string) => byCode.get(c)?.name ?? c
  return children
    .filter((n) => n.valid_to && n.valid_to >= start && n.valid_to <= end)
    .map((n) => {
      const into = (n.successors ?? []).map((c) => ({ code: c, name: name(c) }))
      const kind = into.length > 1 ? 'split' : into.length === 1 ? 'merge' : 'retired'
      return { code: n.code ?? '', name: n.name ?? n.code ?? '', on: n.valid_to!, kind, into } as Change
    })
    .sort((a, b) => a.on.localeCompare(b.on) || a.code.localeCompare(b.code))
}

// -- words ------------------------------------------------------------------------------------------

const g = i18n.global as unknown as { t: (k: string, v?: Record<string, unknown>) => string; te: (k: string) => boolean }
const t = (k: string, v?: Record<string, unknown>) => (v ? g.t(k, v) : g.t(k))
const te = (k: string) => g.te(k)

/** A dimension value of a metric in words: this file's words, else the other areas' (matter categories and
 *  channels, care tags, residence types), else the code itself. */
export function dimLabel(metric: string, dim: string, key: string): string {
  const shared: Record<string, string> = {
    'residents.tags': `people.tag.${key}`, 'residents.residence_type': `people.residence.${key}`,
    'matters_raised.category': `consult.category.${key}`, 'matters_raised.channel': `consult.channel.${key}`,
  }
  for (const k of [`dashCharts.dim.${metric}.${dim}.${key}`, shared[`${metric}.${dim}`]]) if (k && te(k)) return t(k)
  if (dim === 'age_band') return key.endsWith('+') ? t('dashCharts.ageOver', { n: key.slice(0, -1) }) : t('dashCharts.ageBand', { band: key })
  return key
}

const nf = () => new Intl.NumberFormat(isEn() ? 'en-GB' : 'zh-CN', { maximumFractionDigits: 1 })
/** A figure as shown: the number, 已隐藏 where suppressed, — where there is none. */
export function show(c: Cell, kind: 'count' | 'rate' = 'count'): string {
  if (c.suppressed) return t('dashCharts.suppressed')
  if (c.value === null) return '—'
  return kind === 'rate' ? `${nf().format(Math.round(c.value * 1000) / 10)}%` : nf().format(c.value)
}

/** Text safe to put into a tooltip's HTML. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]!))
}

/** "a：b" in Chinese, "a: b" in English. */
export function colon(a: string, b: string): string { return isEn() ? `${a}: ${b}` : `${a}：${b}` }
/** "a（b）" in Chinese, "a (b)" in English. */
export function paren(a: string, b: string): string { return isEn() ? `${a} (${b})` : `${a}（${b}）` }
/** A list joined with 、 in Chinese, with commas in English. */
export function joined(xs: string[]): string { return xs.join(isEn() ? ', ' : '、') }

// One palette for every chart, dark enough for text on white; grey is kept for suppressed.
export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4d7c0f',
  '#9a3412', '#1e3a8a', '#065f46', '#7f1d1d']
export const SUPPRESSED_GREY = '#9ca3af'
