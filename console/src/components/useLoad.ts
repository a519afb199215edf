// A page's data: loading, error and the result of one async call, with reload().
import { ref, type Ref } from 'vue'

export function useLoad<T>(fn: () => Promise<T>, immediate = true) {
  const data = ref<T | null>(null) as Ref<T | null>
  const loading = ref(false)
  const error = ref<unknown>(null)
  async function reload() {
    loading.value = true
    error.value = null
    try {
      data.value = await fn()
    } catch (e) {
      error.value = e
    } finally {
      loading.value = false
    }
  }
  if (immediate) reload()
  return { data, loading, error, reload }
}
