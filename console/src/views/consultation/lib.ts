// 三上三下 helpers shared by the consultation pages: reply types (the generated ones mark every field
// optional), stages, deadline colours, dates, form errors, and the links this browser remembers (the API
// lists no meetings or decisions, so the pages remember the ones created or opened here).
import { useNodes } from '@/components/nodes'
import { computed, reactive, ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { api, ApiError, call } from '@/api/client'
import { describe } from '@/components/PageState.vue'
import { can } from '@/session'

export interface Matter {
  id: number; request_id: string | null; community_code: string; building: string | null; category: string
  urgency: string; channel: string; title: string; description: string; raiser_resident_id: number | null
  attachments: string[]; status: string; duplicate_of: number | null; backers: number; level_code: string
  raised_at: string; screening_due_at: string; settle_due_at: string; screened_at: string | null
  screen_note: string | null; referred_to: string | null; agenda_item_id: number | null; settled_at: string | null
  overdue: boolean; screening_overdue: boolean; similar_to: number | null; version: number
}
export interface MatterHistory { version: number; status: string; note: string | null; actor: string; at: string }
export interface MatterDetail extends Matter { history: MatterHistory[] }
export interface MatterPage { items: Matter[]; next: number | null }
export interface Similar { id: number; title: string; status: string; backers: number; similarity: number }
export interface AgendaOption { id: number; title: string; description: string | null; budget: string | null }
export interface AgendaItem {
  id: number; community_code: string; title: string; status: string; created_by: string; created_at: string
  matters: Matter[]; options: AgendaOption[]
  meetings: { id: number; title: string; starts_at: string; status: string }[]; decision_id: number | null
}
export interface RosterEntry {
  id: number; role: string; resident_id: number | null; name: string; affiliation: string | null; attended: boolean
}
export interface Meeting {
  id: number; community_code: string; title: string; starts_at: string; place: string; quorum: number
  status: string; minutes: string | null; items: { id: number; title: string; status: string }[]
  roster: RosterEntry[]; attendance_by_role: Record<string, number>; version: number
}
export interface Tally {
  meeting_id: number; agenda_item_id: number; attended: number; quorum: number; quorum_met: boolean
  priority: number | null; options: { option_id: number; approve: number; oppose: number; abstain: number }[]
  adopted_option_id: number | null; why_none: string | null
}
export interface TaskUpdate { progress: number; note: string; actor: string; at: string }
export interface Task {
  id: number; decision_id: number; title: string; responsible: string; due_on: string; progress: number
  created_at: string; updates: TaskUpdate[]
}
export interface Decision {
  id: number; agenda_item_id: number; meeting_id: number; community_code: string; item_title: string
  option_id: number; option_title: string; approve: number; oppose: number; abstain: number; attended: number
  responsible: string; budget: string | null; deadline: string; decided_at: string; published_at: string | null
  summary: string | null; public_summary: string | null; tasks: Task[]
}
export interface PublicResult {
  id: number; community_code: string; ratings: number; satisfied: number; progress: number
  vote: Record<string, number>; attendance_by_role: Record<string, number>
}

// services/consultation/rules.py
export const CATEGORIES = ['parking', 'greening', 'garbage_sorting', 'noise', 'corridor_clutter', 'facilities_renewal',
  'elevator', 'property_management', 'public_security', 'other'] as const
export const CHANNELS = ['reception_day', 'suggestion_box', 'discussion_book', 'online', 'hotline', 'grid_patrol'] as const
export const URGENCIES = ['normal', 'urgent', 'emergency'] as const
export const ROLES = ['resident_rep', 'party_member', 'building_captain', 'community_police', 'property_company',
  'owners_committee', 'social_org', 'expert', 'street_department'] as const
export type Category = typeof CATEGORIES[number]
export type Channel = typeof CHANNELS[number]
export type Urgency = typeof URGENCIES[number]
export type Role = typeof ROLES[number]

/** The board's columns: a matter's status falls in one stage of 三上三下. */
export const STAGES: { key: string; statuses: string[] }[] = [
  { key: 'screening', statuses: ['raised', 'escalated'] },
  { key: 'answered', statuses: ['answered', 'referred'] },
  { key: 'deliberating', statuses: ['deliberating'] },
  { key: 'implementing', statuses: ['decided', 'implementing'] },
  { key: 'published', statuses: ['published'] },
  { key: 'settled', statuses: ['settled'] },
  { key: 'closed', statuses: ['rejected', 'merged'] },
]
export const CLOSED = ['settled', 'rejected', 'merged']
export const UNSCREENED = ['raised', 'escalated']

/** The deadline that matters now (screening while unscreened, else settlement), and its colour. */
export function deadline(m: Matter, now = Date.now()): { at: string; kind: 'screening' | 'settle'; tone: 'red' | 'yellow' | 'blue' } | null {
  if (CLOSED.includes(m.status)) return null
  const screening = UNSCREENED.includes(m.status)
  const at = screening ? m.screening_due_at : m.settle_due_at
  const left = new Date(at).getTime() - now
  const near = screening ? 24 * 3600e3 : 3 * 24 * 3600e3
  const tone = left < 0 || (screening ? m.screening_overdue : m.overdue) ? 'red' : left < near ? 'yellow' : 'blue'
  return { at, kind: screening ? 'screening' : 'settle', tone }
}

/** A date picker's wall-clock time read as Shanghai time (whatever the browser's zone), as ISO 8601. */
export function shanghaiIso(x: Date) {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${x.getFullYear()}-${p(x.getMonth() + 1)}-${p(x.getDate())}T${p(x.getHours())}:${p(x.getMinutes())}:00+08:00`
}
/** The inverse: an instant as a Date whose wall-clock fields are its Shanghai time (for a date picker). */
export function shanghaiWall(iso: string) {
  const s = new Date(new Date(iso).getTime() + 8 * 3600e3)
  return new Date(s.getUTCFullYear(), s.getUTCMonth(), s.getUTCDate(), s.getUTCHours(), s.getUTCMinutes())
}

export function useFormat() {
  const { locale } = useI18n()
  const lang = () => (locale.value === 'en' ? 'en-GB' : 'zh-CN')
  return {
    dateTime: (x: string | null | undefined) => x ? new Date(x).toLocaleString(lang(), { timeZone: 'Asia/Shanghai',
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }) : '—',
    date: (x: string | null | undefined) => x ? new Date(x.length === 10 ? `${x}T00:00:00+08:00` : x)
      .toLocaleDateString(lang(), { timeZone: 'Asia/Shanghai' }) : '—',
    money: (x: string | null | undefined) => x == null ? '—' : Number(x).toLocaleString(lang(), { minimumFractionDigits: 2 }),
  }
}

/** A form's API errors: field messages by name (for el-form-item :error) and the problem's words. */
export function useForm() {
  const { t, te } = useI18n()
  const errors = reactive<Record<string, string>>({})
  const problem = ref('')
  const busy = ref(false)
  function clear() {
    for (const k of Object.keys(errors)) delete errors[k]
    problem.value = ''
  }
  async function run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    clear()
    busy.value = true
    try {
      return await fn()
    } catch (e) {
      if (e instanceof ApiError) for (const [k, v] of Object.entries(e.fields)) errors[k] = v.join('; ')
      problem.value = describe(e, t, te)
      return undefined
    } finally {
      busy.value = false
    }
  }
  return { errors, problem, busy, run, clear }
}

export function requestId(prefix: string) {
  const random = typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
  return `${prefix}-${random}`
}

// -- communities (a select instead of a 12-digit code) -------------------------------------------
export function useCommunities() {
  const { nodes, nameOf } = useNodes()
  const communities = computed(() => nodes.value.filter((n) => n.level === 'community').map((n) => ({ code: n.code, name: n.name })))
  return { communities, communityName: (code: string | null | undefined) => nameOf(code) || (code ?? '') }
}

// -- what this browser remembers ----------------------------------------------------------------
export interface Remembered { kind: 'meeting' | 'decision' | 'item'; id: number; title: string; items?: number[]; at: string }
const KEY = 'linli.consultation.recent'
export function recall(): Remembered[] {
  try { return JSON.parse(localStorage.getItem(KEY) ?? '[]') } catch { return [] }
}
export function remember(r: Omit<Remembered, 'at'>) {
  const rest = recall().filter((x) => !(x.kind === r.kind && x.id === r.id))
  localStorage.setItem(KEY, JSON.stringify([{ ...r, at: new Date().toISOString() }, ...rest].slice(0, 60)))
}
export function rememberedFor(itemId: number) {
  return recall().filter((r) => r.kind !== 'item' && (r.items ?? []).includes(itemId))
}
