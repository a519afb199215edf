// Helpers of the people pages: reply types (the generated ones mark every field optional), the enums of
// the register, the communities and grids of the signed-in scope, dates, and form errors from a 422.
import { onBeforeUnmount, reactive, ref } from 'vue'
import { api, call, ApiError } from '@/api/client'
import { can } from '@/session'

export interface HouseholdRef { id: number; household_no: string; address: string | null }
export interface Resident {
  id: number; name: string; id_number: string; phone: string | null; sex: string; birth_date: string; age: number
  community_code: string; grid_code: string | null; household: HouseholdRef | null; relation: string | null
  residence_type: string; tags: string[]; moved_in: string | null; status: string; status_on: string | null
  version: number
}
export interface ResidentChange {
  version: number; change: string; effective: string; detail: Record<string, unknown>; actor: string | null
  changed_at: string
}
export interface ResidentDetail extends Resident { history: ResidentChange[] }
export interface ResidentPage { items: Resident[]; next: number | null }
export interface Household {
  id: number; household_no: string; community_code: string
  address: { building?: string; unit?: string; room?: string } | null
  head_resident_id: number | null; members: Resident[]
}
export interface ImportError { row: number; field: string; message: string }
export interface ImportReport {
  mode: string; encoding: string | null; columns: Record<string, string>; ignored_columns: string[]; rows: number
  accepted: number; rejected: number; written: number; import_id: string | null; errors: ImportError[]
  errors_truncated: boolean; seconds: Record<string, number>
}

// The register's enums, as services/registry/schemas.py declares them (labels in locales/people.ts).
export const TAGS = ['elderly_alone', 'empty_nest_elderly', 'disabled', 'low_income', 'veteran',
  'after_school_child', 'special_care'] as const
export const RESIDENCE_TYPES = ['registered', 'permanent', 'floating', 'lodging'] as const
export const RELATIONS = ['self', 'spouse', 'child', 'parent', 'grandchild', 'sibling', 'other'] as const
export const STATUSES = ['active', 'left', 'deceased', 'all'] as const
export type Tag = typeof TAGS[number]
export type ResidenceType = typeof RESIDENCE_TYPES[number]
export type Relation = typeof RELATIONS[number]
export type Status = typeof STATUSES[number]

export { useNodes, type Node } from '@/components/nodes'

/** A day or a moment as a person in Shanghai reads it. */
export function when(value: string | null | undefined, lang: string, withTime = true): string {
  if (!value) return ''
  if (!withTime && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value
  const d = new Date(value)
  const locale = lang === 'en' ? 'en-GB' : 'zh-CN'
  return withTime
    ? d.toLocaleString(locale, { timeZone: 'Asia/Shanghai' })
    : d.toLocaleDateString(locale, { timeZone: 'Asia/Shanghai' })
}

/** Today in Shanghai as YYYY-MM-DD (the default day of a move, departure or death). */
export function today(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
}

/** Field errors of a form, filled from a 422 and cleared before each submission. */
export function useFieldErrors(fields: readonly string[]) {
  const errors = reactive<Record<string, string>>(Object.fromEntries(fields.map((f) => [f, ''])))
  function clear() { for (const k of Object.keys(errors)) errors[k] = '' }
  /** Fill from an ApiError; answers the messages of fields the form does not show (to list in the alert). */
  function fill(e: unknown): string[] {
    clear()
    if (!(e instanceof ApiError)) return []
    const rest: string[] = []
    for (const [name, messages] of Object.entries(e.fields)) {
      const key = name.split('.')[0]
      if (key in errors) errors[key] = [errors[key], ...messages].filter(Boolean).join('; ')
      else rest.push(`${name}: ${messages.join('; ')}`)
    }
    return rest
  }
  return { errors, clear, fill }
}

/** Drop empty strings so optional fields are sent absent rather than blank. */
export function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) {
    if (v === '' || v === null || v === undefined) continue
    if (Array.isArray(v) && !v.length) continue
    out[k] = typeof v === 'string' ? v.trim() : v
  }
  return out as Partial<T>
}

/** Whether the window is phone-narrow (for layouts CSS alone cannot switch, e.g. el-descriptions columns). */
export function useNarrow(width = 600) {
  const media = window.matchMedia(`(max-width: ${width}px)`)
  const narrow = ref(media.matches)
  const update = () => { narrow.value = media.matches }
  media.addEventListener('change', update)
  onBeforeUnmount(() => media.removeEventListener('change', update))
  return narrow
}

/** Who did it, as a person reads it: "account:wangli:王丽" → 王丽, "demo:长海路街道 王建国" → 长海路街道 王建国. */
export function actorName(actor: string | null | undefined): string {
  if (!actor) return ''
  const m = /^(?:account|token):[^:]*:(.*)$/.exec(actor) ?? /^[a-z_]+:(.*)$/.exec(actor)
  return m ? m[1] : actor
}
