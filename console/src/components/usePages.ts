// A list the API pages (`limit`/`after` -> `next`): the first page (loading and error shown by PageState),
// and "加载更多" appending the next (its failure a message, the rows shown so far kept).
import { ref, type Ref } from 'vue'
import { ElMessage } from 'element-plus'
import { i18n } from '@/i18n'
import { describe } from './PageState.vue'

export function usePages<T>(page: (after?: number) => Promise<{ items: T[]; next?: number | null }>) {
  const items = ref([]) as Ref<T[]>
  const next = ref<number | null>(null)
  const loading = ref(false)
  const loadingMore = ref(false)
  const error = ref<unknown>(null)
  async function load() {
    loading.value = true
    error.value = null
    try {
      const p = await page()
      items.value = p.items
      next.value = p.next ?? null
    } catch (e) { error.value = e } finally { loading.value = false }
  }
  async function more() {
    if (next.value === null) return
    loadingMore.value = true
    try {
      const p = await page(next.value)
      items.value.push(...p.items)
      next.value = p.next ?? null
    } catch (e) {
      const { t, te } = i18n.global as unknown as { t: (k: string) => string; te: (k: string) => boolean }
      ElMessage.error(describe(e, t, te))
    } finally { loadingMore.value = false }
  }
  return { items, next, loading, loadingMore, error, load, more }
}
