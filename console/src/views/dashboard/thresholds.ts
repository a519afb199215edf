// The rates' thresholds an analyst sets on the dashboard: below `low` a rate shows red, below `target`
// amber, at or above it green; the trend chart draws `target` as its line. Kept in this browser for the
// person signed in (cleared at sign-out with the rest of linli.*).
export type RateKey = 'report_rate' | 'settlement_rate' | 'on_time_rate' | 'satisfaction_rate' | 'reach_rate' | 'read_rate'
export interface Threshold { low: number; target: number }
export type Thresholds = Record<RateKey, Threshold>

export const RATE_KEYS: RateKey[] = ['report_rate', 'settlement_rate', 'on_time_rate', 'satisfaction_rate', 'reach_rate', 'read_rate']
const KEY = 'linli.dashboard.thresholds'
export const DEFAULT_THRESHOLDS: Thresholds = {
  report_rate: { low: 0.6, target: 0.8 },
  settlement_rate: { low: 0.6, target: 0.8 },
  on_time_rate: { low: 0.7, target: 0.9 },
  satisfaction_rate: { low: 0.7, target: 0.9 },
  reach_rate: { low: 0.8, target: 0.95 },
  read_rate: { low: 0.5, target: 0.8 },
}

export function loadThresholds(): Thresholds {
  const out = structuredClone(DEFAULT_THRESHOLDS)
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? '{}')
    for (const k of RATE_KEYS) {
      const v = saved?.[k]
      if (v && typeof v.low === 'number' && typeof v.target === 'number' && 0 <= v.low && v.low <= v.target && v.target <= 1) {
        out[k] = { low: v.low, target: v.target }
      }
    }
  } catch { /* a damaged entry: the defaults */ }
  return out
}

export function saveThresholds(t: Thresholds) { localStorage.setItem(KEY, JSON.stringify(t)) }

/** 'low' | 'near' | 'good' for a rate against its threshold; null for a rate not shown. */
export function grade(key: RateKey, rate: number | null | undefined, t: Thresholds): 'low' | 'near' | 'good' | null {
  if (rate === null || rate === undefined) return null
  return rate < t[key].low ? 'low' : rate < t[key].target ? 'near' : 'good'
}
