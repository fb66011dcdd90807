// Timing of the Kotlin API (scripts/bench-kotlin): a durable local write and
// a contact search, each called 10,000 times from Kotlin through UniFFI and
// JNA, as a check-in app would. Prints p50/p99 per call. Not a test: it
// asserts nothing and is not run by the test command.
package org.muster.bench

import java.io.File
import java.nio.file.Files
import kotlin.random.Random
import org.muster.Muster
import org.muster.core.NewContact

val FIRST = listOf("Ana", "Bo", "Chidi", "Dana", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jamal", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomas")
val LAST = listOf("Silva", "Chen", "Okafor", "Novak", "Yilmaz", "Adeyemi", "Hughes", "Moreau", "Costa", "Haddad", "Mensah", "Fischer", "Garcia", "Rahman", "Nasser", "Patel", "Byrne", "Lopez", "Ahmed", "Kowalski")

fun percentiles(label: String, nanos: LongArray) {
    nanos.sort()
    fun p(q: Double) = nanos[((nanos.size - 1) * q).toInt()] / 1_000_000.0
    println(String.format("%-34s p50 %.3f ms   p99 %.3f ms   (n=%d)", label, p(0.50), p(0.99), nanos.size))
}

fun main() {
    val n = 10_000
    val dir = Files.createTempDirectory("muster-bench").toFile()
    val phone = Muster.open(File(dir, "bench.db").path)
    val rng = Random(7)
    val writes = LongArray(n)
    for (i in 0 until n) {
        val first = FIRST[rng.nextInt(FIRST.size)]
        val last = LAST[rng.nextInt(LAST.size)]
        val contact = NewContact(
            name = "$first $last $i",
            phones = listOf("+44 7700 9${(i % 100000).toString().padStart(5, '0')}"),
            emails = listOf("${first.lowercase()}.${last.lowercase()}$i@example.org"),
            tags = listOf("bench"),
        )
        val t = System.nanoTime()
        phone.createContact(contact)
        writes[i] = System.nanoTime() - t
    }
    val searches = LongArray(n)
    var found = 0L
    for (i in 0 until n) {
        val query = when (i % 3) {
            0 -> LAST[rng.nextInt(LAST.size)].take(4).lowercase()
            1 -> "${FIRST[rng.nextInt(FIRST.size)]} ${rng.nextInt(n)}"
            else -> "7700 9${rng.nextInt(n).toString().padStart(5, '0').take(3)}"
        }
        val t = System.nanoTime()
        found += phone.searchContacts(query, 20u).size
        searches[i] = System.nanoTime() - t
    }
    println("Kotlin API over UniFFI + JNA, store of $n contacts, ${Runtime.getRuntime().availableProcessors()} cores")
    percentiles("createContact (durable write)", writes)
    percentiles("searchContacts (20 results max)", searches)
    println("(searches returned $found rows in all)")
    phone.close()
    dir.deleteRecursively()
}
