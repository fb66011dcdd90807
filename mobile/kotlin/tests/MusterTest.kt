// The Kotlin bindings, end to end: two "phones" (two Muster objects in one
// JVM, each with its own store) against a real muster-server on 127.0.0.1.
// Run by scripts/test-kotlin; each test asserts, and the runner exits
// non-zero if any fails.
package org.muster.test

import java.io.File
import java.nio.file.Files
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlinx.coroutines.runBlocking
import org.muster.core.NewConsent
import org.muster.Muster
import org.muster.MusterException
import org.muster.MusterListener
import org.muster.Reconciliation
import org.muster.Contact
import org.muster.ContactObserver
import org.muster.RosterObserver
import org.muster.RosterLine
import org.muster.core.NewContact
import org.muster.NewEvent
import org.muster.core.NewFeedback
import org.muster.core.ContactEdit
import org.muster.EventEdit
import org.muster.core.FeedbackStatus
import org.muster.core.SignupStatus
import org.muster.core.SyncActivity
import org.muster.SyncStatus
import java.time.Instant
import java.time.Duration as Span

/** A muster-server process on 127.0.0.1 and an unused port. */
class Relay(private val bin: String) : AutoCloseable {
    val data: File = Files.createTempDirectory("muster-relay").toFile()
    private val process: Process
    val address: String

    init {
        process = ProcessBuilder(bin, "serve", "--listen", "127.0.0.1:0", "--data", data.path)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .also { it.environment()["NO_COLOR"] = "1"; it.environment()["RUST_LOG"] = "info" }
            .start()
        val log = process.errorStream.bufferedReader()
        var found: String? = null
        while (found == null) {
            val line = log.readLine() ?: fail("the relay exited before listening")
            found = line.substringAfter("http://", "").split(" ").first().ifEmpty { null }
        }
        address = found
        // Keep draining its log so it never blocks on a full pipe.
        Thread { log.forEachLine { } }.apply { isDaemon = true }.start()
    }

    val url get() = "http://$address"

    /** `muster-server token create`, as an administrator runs it. */
    fun token(role: String, vararg events: String): String {
        val args = mutableListOf(bin, "token", "create", "--role", role, "--name", "kotlin", "--data", data.path)
        events.forEach { args += listOf("--event", it) }
        val p = ProcessBuilder(args).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val out = p.inputStream.bufferedReader().readText().trim()
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "token create failed")
        assertEquals(1, out.lines().size, "token create prints one line")
        return out
    }

    /** A token and its id (`tok_…`, which `token revoke` takes). */
    fun tokenWithId(role: String): Pair<String, String> {
        val p = ProcessBuilder(bin, "token", "create", "--role", role, "--name", "kotlin", "--data", data.path).start()
        val out = p.inputStream.bufferedReader().readText().trim()
        val err = p.errorStream.bufferedReader().readText()
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "token create failed: $err")
        val id = err.split(Regex("\\s+")).first { it.startsWith("tok_") }
        return out to id
    }

    /** `muster-server token revoke ID`. */
    fun revoke(id: String) {
        val p = ProcessBuilder(bin, "token", "revoke", id, "--data", data.path)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "token revoke failed")
    }

    override fun close() {
        process.destroyForcibly().waitFor()
        data.deleteRecursively()
    }
}

/** Collects what a listener hears; callbacks arrive on an engine thread. */
class Heard : MusterListener {
    val changes = ConcurrentLinkedQueue<Pair<List<String>, Boolean>>()
    val statuses = ConcurrentLinkedQueue<SyncStatus>()
    val warnings = ConcurrentLinkedQueue<String>()
    val threads = ConcurrentLinkedQueue<String>()

    override fun onRecordsChanged(recordIds: List<String>, fromRelay: Boolean) {
        threads += Thread.currentThread().name
        changes += recordIds to fromRelay
    }
    override fun onSyncStatus(status: SyncStatus) {
        statuses += status
    }
    override fun onSyncWarning(message: String) {
        warnings += message
    }
    val refusals = ConcurrentLinkedQueue<String>()
    override fun onAccessRefused(message: String) {
        refusals += message
    }
    val reports = ConcurrentLinkedQueue<Reconciliation>()
    override fun onReconciliation(report: Reconciliation) {
        reports += report
    }
}

fun eventually(what: String, check: () -> Boolean) {
    val deadline = System.nanoTime() + 20_000_000_000L
    while (!check()) {
        if (System.nanoTime() > deadline) fail("never: $what")
        Thread.sleep(20)
    }
}

/** Every folder [tempStore] made, removed when the tests end. */
val tempDirs = mutableListOf<File>()

fun tempStore(name: String): String {
    val dir = Files.createTempDirectory("muster-phone").toFile()
    tempDirs += dir
    return File(dir, name).path
}

/** Everything a phone shows of an event and its people, for comparison. */
fun view(phone: Muster, eventId: String): String {
    val roster = phone.roster(eventId)
    val people = roster.map { phone.contact(it.contactId) }
    val event = phone.listEvents().single { it.id == eventId }
    return "$event\n$roster\n$people"
}

lateinit var serverBin: String

fun twoPhonesCaptureOfflineSyncAndEndIdentical() = Relay(serverBin).use { relay ->
    val office = Muster.open(tempStore("office.db"))
    val desk = Muster.open(tempStore("desk.db"))
    runBlocking {
        assertTrue(office.enroll(relay.url, relay.token("coordinator")).reachedRelay)
        val drive = office.createEvent(NewEvent(title = "Food drive", startsAt = Instant.now(), place = "Hall", capacity = 2))
        office.syncNow()
        // The desk is a volunteer's phone, scoped to the food drive.
        val enrolled = desk.enroll(relay.url, relay.token("volunteer", drive))
        assertTrue(enrolled.reachedRelay)
        assertEquals(listOf(drive), desk.listEvents().map { it.id })

        // Offline: each phone registers and checks people in.
        val ana = office.createContact(NewContact(name = "Ana Silva", phones = listOf("+44 20 7946 0958")))
        office.register(drive, ana, false)
        office.checkIn(drive, ana)
        val bo = desk.createContact(NewContact(name = "Bo Chen", emails = listOf("bo@example.org")))
        desk.recordConsent(bo, NewConsent(given = true, channels = listOf("email"), method = "paper form"))
        desk.checkIn(drive, bo) // a walk-in
        val cy = desk.createContact(NewContact(name = "Cy Okafor"))
        desk.register(drive, cy, false)
        assertTrue(desk.syncStatus().pendingChanges > 0)

        office.syncNow()
        val deskSync = desk.syncNow()
        office.syncNow()
        // The desk's reconciliation: Ana arrived, and Cy lost the seat Ana
        // had taken first.
        val reconciliation = assertNotNull(deskSync.reconciliation)
        assertEquals(1uL, reconciliation.newContacts)
        assertEquals(listOf(cy), reconciliation.movedToWaitlist.map { it.contactId })
        assertEquals("Food drive", reconciliation.movedToWaitlist.single().eventTitle)

        for (phone in listOf(office, desk)) {
            val status = phone.syncStatus()
            assertEquals(0L, status.pendingChanges)
            assertNotNull(status.lastConfirmedAt)
        }
        assertEquals(view(office, drive), view(desk, drive))
        val roster = desk.roster(drive)
        assertEquals(3, roster.size)
        assertEquals(2, roster.count { it.status == SignupStatus.CHECKED_IN })
        // Two seats: the third to register waits, first in line.
        val waiting = roster.single { it.status == SignupStatus.WAITLISTED }
        assertEquals(1u, waiting.waitlistPosition)
        assertEquals(listOf("Bo Chen"), office.searchContacts("chen", 10u).map { it.name })
        // Typed again at the office: the phone warns, and a merge folds it in.
        val again = NewContact(name = "Bo Chén", emails = listOf("BO@example.org"))
        val maybe = office.possibleDuplicates(again)
        assertEquals(listOf(bo), maybe.map { it.contactId })
        assertTrue(maybe.single().reasons.contains("same email bo@example.org"), "${maybe.single().reasons}")
        val bo2 = office.createContact(again)
        office.merge(bo, bo2)
        assertEquals(listOf(bo), office.searchContacts("chen", 10u).map { it.id })
        office.unmerge(bo2)
        assertEquals(2, office.searchContacts("chen", 10u).size)
        assertTrue(office.contact(bo).consent.given)
    }
    office.close()
    desk.close()
}

fun listenerCallbacksArrive() = Relay(serverBin).use { relay ->
    val a = Muster.open(tempStore("a.db"))
    val b = Muster.open(tempStore("b.db"))
    val (heardA, heardB) = Heard() to Heard()
    a.setListener(heardA)
    b.setListener(heardB)
    runBlocking {
        a.enroll(relay.url, relay.token("coordinator"))
        b.enroll(relay.url, relay.token("coordinator"))
    }
    a.startSync()
    b.startSync()
    for (heard in listOf(heardA, heardB)) {
        eventually("live sync reports caught up") { heard.statuses.any { it.activity is SyncActivity.Live && it.live } }
    }
    val ana = a.createContact(NewContact(name = "Ana Silva"))
    eventually("A hears its own write") { heardA.changes.contains(listOf(ana) to false) }
    eventually("B hears Ana from the relay") { heardB.changes.any { (ids, fromRelay) -> fromRelay && ana in ids } }
    assertEquals("Ana Silva", b.contact(ana).name)
    eventually("A's write is confirmed") { a.syncStatus().pendingChanges == 0L }
    assertTrue(heardA.threads.none { it == Thread.currentThread().name }, "callbacks never run on the caller's thread")

    // A listener removed hears nothing more.
    b.setListener(null)
    val before = heardB.changes.size
    val bo = a.createContact(NewContact(name = "Bo Chen"))
    eventually("B receives Bo") { runCatching { b.contact(bo) }.isSuccess }
    assertEquals(before, heardB.changes.size)

    a.stopSync()
    assertTrue(!a.syncStatus().live)
    a.close()
    b.close()
}

fun errorsBecomeKotlinExceptions() = Relay(serverBin).use { relay ->
    val phone = Muster.open(tempStore("e.db"))
    val empty = assertFailsWith<MusterException.Invalid> { phone.createContact(NewContact(name = "  ")) }
    assertEquals("invalid name: must not be empty", empty.message)
    // What it concerns, without reading the message: the field to highlight.
    assertEquals("name", empty.field)
    assertEquals("must not be empty", empty.reason.removePrefix("invalid name: "))
    val email = assertFailsWith<MusterException.Invalid> {
        phone.createContact(NewContact(name = "Ana", emails = listOf("ana.example.org")))
    }
    assertTrue(email.message!!.startsWith("invalid email"), email.message)
    assertEquals("email", email.field)
    // Which entry of a list, to mark that one.
    val second = assertFailsWith<MusterException.Invalid> {
        phone.createContact(NewContact(name = "Ana", phones = listOf("+44 20 7946 0958", "07700 9OO123")))
    }
    assertEquals("phone", second.field)
    assertEquals("07700 9OO123", second.value)
    assertNull(empty.value)
    val missing = assertFailsWith<MusterException.NotFound> { phone.contact("c_00000000000000000000000000") }
    assertTrue(missing.message!!.contains("on this device"), missing.message)
    assertEquals("contact", missing.kind)
    assertEquals("c_00000000000000000000000000", missing.id)
    assertFailsWith<MusterException.NotFound> { phone.roster("e_00000000000000000000000000") }
    val notEnrolled = assertFailsWith<MusterException.NotAllowed> { runBlocking { phone.syncNow() } }
    assertTrue(notEnrolled.message!!.contains("not enrolled"), notEnrolled.message)
    val refused = assertFailsWith<MusterException.Unauthorized> {
        runBlocking { phone.enroll(relay.url, "not-a-token") }
    }
    assertTrue(refused.message!!.contains("relay refused"), refused.message)
    assertTrue(!phone.syncStatus().enrolled, "a refused token is not saved")
    assertFailsWith<MusterException.Invalid> { runBlocking { phone.enroll("relay.example.org", "t") } }
    val key = assertFailsWith<MusterException.Invalid> { Muster.openEncrypted(tempStore("k.db"), ByteArray(5)) }
    assertTrue(key.message!!.contains("32 bytes"), key.message)
    assertEquals("key", key.field)
    // Nothing was written by the failed calls.
    assertEquals(0L, phone.contactCount())
    // The store is not a Muster store: a typed error, not a crash.
    val junk = File(tempStore("junk.db")).apply { writeText("this is not a database".repeat(100)) }
    assertFailsWith<MusterException.Storage> { Muster.open(junk.path) }
    phone.close()
}

fun closingAndReopeningKeepsEverything() = Relay(serverBin).use { relay ->
    val path = tempStore("phone.db")
    val key = ByteArray(32) { it.toByte() }
    var phone = Muster.openEncrypted(path, key)
    val token = relay.token("coordinator")
    runBlocking { phone.enroll(relay.url, token) }
    val gala = phone.createEvent(NewEvent(title = "Gala", startsAt = Instant.ofEpochMilli(1_800_000_000_000), capacity = null))
    val ana = phone.createContact(NewContact(name = "Ana Silva", tags = listOf("first-timer")))
    phone.updateContact(ana, ContactEdit(preferredName = "Ana", phones = listOf("+1 415 555 0100")))
    phone.recordConsent(ana, NewConsent(given = true, channels = listOf("sms")))
    phone.register(gala, ana, false)
    phone.checkIn(gala, ana)
    phone.addInteraction(ana, "visit", "Came with her two children")
    assertTrue(phone.createFeedback(NewFeedback(contactId = ana, channel = "in_person", category = "complaint", text = "The queue was long")).startsWith("f_"))
    val before = phone.contact(ana)
    val deviceId = phone.deviceId()
    phone.close()

    assertFailsWith<MusterException.Storage> { Muster.openEncrypted(path, ByteArray(32)) }
    phone = Muster.openEncrypted(path, key)
    assertEquals(before, phone.contact(ana))
    assertEquals(deviceId, phone.deviceId())
    assertEquals("Ana", phone.contact(ana).preferredName)
    assertEquals(listOf("sms"), phone.contact(ana).consent.channels)
    assertEquals(SignupStatus.CHECKED_IN, phone.roster(gala).single().status)
    assertEquals(1L, phone.listEvents().single().checkedIn)
    val status = phone.syncStatus()
    assertTrue(status.enrolled)
    assertTrue(status.pendingChanges >= 6, "$status")
    assertNull(status.lastConfirmedAt)
    val summary = runBlocking { phone.syncNow() }
    assertEquals(0L, summary.pendingChanges)
    assertTrue(summary.confirmed >= 6u, "$summary")
    phone.close()

    phone = Muster.openEncrypted(path, key)
    assertNotNull(phone.syncStatus().lastConfirmedAt)
    assertEquals(0L, phone.syncStatus().pendingChanges)
    // What reached the relay arrives whole on a new phone.
    val other = Muster.open(tempStore("other.db"))
    runBlocking { other.enroll(relay.url, relay.token("coordinator")) }
    assertEquals(before, other.contact(ana))
    assertEquals(phone.fieldConflicts(ana, "name"), other.fieldConflicts(ana, "name"))
    phone.close()
    other.close()
}

fun manyThreadsAtOnceWhileLiveSyncRuns() = Relay(serverBin).use { relay ->
    val phone = Muster.open(tempStore("busy.db"))
    val office = Muster.open(tempStore("office.db"))
    runBlocking {
        phone.enroll(relay.url, relay.token("coordinator"))
        office.enroll(relay.url, relay.token("coordinator"))
    }
    phone.startSync()
    office.startSync()
    val threads = (0 until 8).map { t ->
        Thread {
            repeat(25) { i ->
                phone.createContact(NewContact(name = "Person $t-$i"))
                phone.searchContacts("person $t", 5u)
                phone.syncStatus()
            }
        }
    }
    threads.forEach { it.start() }
    threads.forEach { it.join() }
    assertEquals(200L, phone.contactCount())
    eventually("the office receives all 200") { office.contactCount() == 200L }
    eventually("every change is confirmed") { phone.syncStatus().pendingChanges == 0L }
    phone.stopSync()
    office.stopSync()
    phone.close()
    office.close()
}

fun fieldConflictsShowBothValues() = Relay(serverBin).use { relay ->
    val a = Muster.open(tempStore("a.db"))
    val b = Muster.open(tempStore("b.db"))
    runBlocking {
        a.enroll(relay.url, relay.token("coordinator"))
        b.enroll(relay.url, relay.token("coordinator"))
        val ana = a.createContact(NewContact(name = "Ana Silva"))
        a.syncNow()
        b.syncNow()
        // Both desks correct the name, offline.
        a.updateContact(ana, ContactEdit(name = "Ana Silva Pereira"))
        b.updateContact(ana, ContactEdit(name = "Anna Silva"))
        a.syncNow()
        b.syncNow()
        a.syncNow()
        val values = a.fieldConflicts(ana, "name")
        assertEquals(setOf("Ana Silva Pereira", "Anna Silva"), values.toSet())
        assertEquals(values, b.fieldConflicts(ana, "name"))
        assertEquals(values.first(), a.contact(ana).name, "the value shown comes first")
        // A person settles it: the other value, chosen, wins everywhere.
        assertFailsWith<MusterException.Invalid> { a.resolveConflict(ana, "name", "Somebody Else") }
        a.resolveConflict(ana, "name", values[1])
        a.syncNow()
        b.syncNow()
        for (phone in listOf(a, b)) {
            assertEquals(listOf(values[1]), phone.fieldConflicts(ana, "name"))
            assertEquals(values[1], phone.contact(ana).name)
        }
        assertFailsWith<MusterException.NotAllowed> { b.resolveConflict(ana, "name", values[1]) }
    }
    a.close()
    b.close()
}

// Issue 18, defect 1: capacity 1, Dana, her duplicate, then Chen; merged,
// Dana is one person with one seat, Chen waits at place 1, and when Dana
// cancels (by her duplicate's id) Chen takes the seat.
fun aMergedPersonHoldsOneSeat() {
    val phone = Muster.open(tempStore("merge.db"))
    val gala = phone.createEvent(NewEvent(title = "Gala", startsAt = Instant.ofEpochMilli(1_800_000_000_000), capacity = 1))
    val dana = phone.createContact(NewContact(name = "Dana Smith"))
    val twin = phone.createContact(NewContact(name = "Dana Smith"))
    val chen = phone.createContact(NewContact(name = "Chen Li"))
    for (c in listOf(dana, twin, chen)) phone.register(gala, c, false)
    phone.merge(dana, twin)
    val roster = phone.roster(gala)
    assertEquals(listOf(dana, chen), roster.map { it.contactId })
    assertEquals(SignupStatus.REGISTERED, roster[0].status)
    assertEquals(SignupStatus.WAITLISTED, roster[1].status)
    assertEquals(1u, roster[1].waitlistPosition)
    val event = phone.listEvents().single()
    assertEquals(1L, event.registered)
    assertEquals(1L, event.waitlisted)
    phone.cancel(gala, twin)
    val after = phone.roster(gala).associate { it.contactId to it.status }
    assertEquals(mapOf(dana to SignupStatus.CANCELLED, chen to SignupStatus.REGISTERED), after)
    assertEquals(0L, phone.listEvents().single().waitlisted)
    phone.close()
}

/** A listener whose onRecordsChanged throws every time. */
class Throwing : MusterListener {
    val changes = ConcurrentLinkedQueue<List<String>>()
    val warnings = ConcurrentLinkedQueue<String>()
    override fun onRecordsChanged(recordIds: List<String>, fromRelay: Boolean) {
        changes += recordIds
        throw IllegalStateException("the app's code threw")
    }
    override fun onSyncStatus(status: SyncStatus) {}
    override fun onSyncWarning(message: String) {
        warnings += message
    }
    override fun onAccessRefused(message: String) {}
    override fun onReconciliation(report: Reconciliation) {}
}

// Issue 18, defect 2: a listener that throws is told once and keeps
// hearing; so does the next one set.
fun aListenerThatThrowsKeepsHearing() {
    val phone = Muster.open(tempStore("throws.db"))
    val throwing = Throwing()
    phone.setListener(throwing)
    val ana = phone.createContact(NewContact(name = "Ana Silva"))
    val bo = phone.createContact(NewContact(name = "Bo Chen"))
    eventually("both writes are heard") { throwing.changes.size == 2 }
    assertEquals(listOf(listOf(ana), listOf(bo)), throwing.changes.toList())
    assertEquals(1, throwing.warnings.size, "${throwing.warnings}")
    assertTrue(throwing.warnings.single().contains("the app's code threw"), throwing.warnings.single())
    val next = Heard()
    phone.setListener(next)
    val cy = phone.createContact(NewContact(name = "Cy Diaz"))
    eventually("the next listener hears") { next.changes.any { (ids, _) -> cy in ids } }
    phone.close()
}

// Issue 18, defect 3: enrolling a live phone again with a refused token
// changes nothing (live sync, status, later writes reach the relay); its
// own token scanned again carries live sync on.
fun enrollingALivePhoneAgainKeepsItSyncing() = Relay(serverBin).use { relay ->
    val phone = Muster.open(tempStore("live.db"))
    val office = Muster.open(tempStore("office.db"))
    val token = relay.token("coordinator")
    runBlocking {
        phone.enroll(relay.url, token)
        office.enroll(relay.url, relay.token("coordinator"))
    }
    phone.startSync()
    office.startSync()
    fun live() = phone.syncStatus().let { it.live && it.activity is SyncActivity.Live }
    eventually("the phone is live") { live() }
    assertFailsWith<MusterException.Unauthorized> { runBlocking { phone.enroll(relay.url, "not-a-token") } }
    val status = phone.syncStatus()
    assertTrue(status.enrolled && status.live, "$status")
    assertTrue(status.activity !is SyncActivity.Failed, "$status")
    eventually("live again") { live() }
    val ana = phone.createContact(NewContact(name = "Ana Silva"))
    eventually("the office receives Ana") { runCatching { office.contact(ana) }.isSuccess }
    // Its QR code scanned again: enrolled, and live sync goes on.
    assertTrue(runBlocking { phone.enroll(relay.url, token) }.reachedRelay)
    eventually("live after enrolling again") { live() }
    val bo = phone.createContact(NewContact(name = "Bo Chen"))
    eventually("the office receives Bo") { runCatching { office.contact(bo) }.isSuccess }
    phone.stopSync()
    office.stopSync()
    phone.close()
    office.close()
}

// Issue 18: what a phone app pages through and edits: rosters by status
// and page, searches by page, upcoming and past events, an event by id,
// edited and cancelled, no-shows.
fun listsPageAndEventsAreEdited() {
    val phone = Muster.open(tempStore("lists.db"))
    val now = Instant.now()
    val fair = phone.createEvent(NewEvent(title = "Spring fair", startsAt = now - Span.ofDays(1)))
    val gala = phone.createEvent(NewEvent(title = "Gala", startsAt = now + Span.ofDays(1), capacity = 2))
    val people = listOf("Ana Silva", "Ana Sousa", "Ana Santos", "Bo Chen").map { phone.createContact(NewContact(name = it)) }
    people.forEach { phone.register(gala, it, false) }
    assertEquals(listOf(gala), phone.upcomingEvents().map { it.id })
    assertEquals(listOf(fair), phone.pastEvents().map { it.id })
    assertEquals("Gala", phone.event(gala).title)
    // Times are the platform's: an Instant in, the same Instant out.
    assertEquals((now + Span.ofDays(1)).toEpochMilli(), phone.event(gala).startsAt.toEpochMilli())
    assertTrue(phone.roster(gala).first().registeredAt.isAfter(now.minusSeconds(60)))
    assertTrue(phone.contact(people[0]).createdAt <= Instant.now())
    assertFailsWith<MusterException.NotFound> { phone.event("e_" + "0".repeat(32)) }
    assertEquals(people.take(2), phone.roster(gala, limit = 2u).map { it.contactId })
    assertEquals(people.drop(2), phone.roster(gala, offset = 2u).map { it.contactId })
    assertEquals(people.drop(2), phone.roster(gala, status = SignupStatus.WAITLISTED).map { it.contactId })
    assertEquals(listOf("Ana Santos", "Ana Silva"), phone.searchContacts("ana", 2u).map { it.name })
    assertEquals(listOf("Ana Sousa"), phone.searchContacts("ana", 2u, offset = 2u).map { it.name })
    // A bigger room: the first waiting takes the new seat.
    phone.editEvent(gala, EventEdit(title = "Winter gala", capacity = 3))
    val edited = phone.event(gala)
    assertEquals("Winter gala", edited.title)
    assertEquals(3L, edited.registered)
    assertEquals(1L, edited.waitlisted)
    assertFailsWith<MusterException.Invalid> { phone.editEvent(gala, EventEdit(capacity = -1)) }
    phone.markNoShow(gala, people[0])
    assertEquals(SignupStatus.NO_SHOW, phone.roster(gala).first().status)
    phone.cancelEvent(gala)
    assertEquals("cancelled", phone.event(gala).status)
    phone.shutdown()
}

// Issue 18: the whole record: address, household, interests, custom
// fields, notes edited in place, the ledger, feedback listed, assigned,
// answered and resolved, duplicates reviewed, a contact erased.
fun theWholeRecord() {
    val phone = Muster.open(tempStore("record.db"))
    val ana = phone.createContact(NewContact(name = "Ana Silva", emails = listOf("ana@example.org")))
    phone.updateContact(ana, ContactEdit(street = "1 High St", city = "Leeds", household = "h-12",
        addInterests = listOf("tutoring"), custom = mapOf("t-shirt" to "M")))
    phone.editNotes(ana, 0u, 0u, "Allergic to nuts.")
    phone.editNotes(ana, 0u, 0u, "Note: ")
    val c = phone.contact(ana)
    assertEquals("Leeds", c.address.city)
    assertEquals("1 High St", c.address.street)
    assertEquals("h-12", c.household)
    assertEquals(listOf("tutoring"), c.interests)
    assertEquals(mapOf("t-shirt" to "M"), c.custom)
    assertEquals("Note: Allergic to nuts.", c.notes)
    phone.addInteraction(ana, "call", "Asked about the food bank")
    val ledger = phone.ledger(ana)
    assertEquals(listOf("Asked about the food bank"), ledger.interactions.map { it.summary })

    val case = phone.createFeedback(NewFeedback(contactId = ana, channel = "phone", category = "complaint", text = "The queue was long"))
    assertEquals(listOf(case), phone.listFeedback(limit = 10u).map { it.id })
    phone.assignFeedback(case, "Dana")
    assertEquals(listOf(case), phone.listFeedback(status = FeedbackStatus.ASSIGNED, limit = 10u).map { it.id })
    phone.answerFeedback(case, "Sorry: a second desk opens next week.")
    phone.resolveFeedback(case, 4)
    val f = phone.feedback(case)
    assertEquals(FeedbackStatus.RESOLVED, f.status)
    assertEquals(listOf("Sorry: a second desk opens next week."), f.responses.map { it.text })
    assertEquals(4L, f.satisfaction)

    val twin = phone.createContact(NewContact(name = "Ana Silva", emails = listOf("ANA@example.org")))
    assertEquals(listOf(ana), phone.possibleDuplicatesOfContact(twin).map { it.contactId })
    assertEquals(1, phone.duplicatePairs().size)
    phone.markNotDuplicate(ana, twin)
    assertTrue(phone.duplicatePairs().isEmpty())
    assertTrue(phone.possibleDuplicatesOfContact(twin).isEmpty())
    phone.eraseContact(twin)
    assertFailsWith<MusterException.NotFound> { phone.contact(twin) }
    phone.shutdown()
}

// Issue 18: a store closed with shutdown, though a listener still refers to
// the object: later calls say so, and the store can be opened again.
fun shutdownClosesTheStoreEvenWithAListener() {
    val path = tempStore("closing.db")
    val phone = Muster.open(path)
    val heard = object : MusterListener {
        val owner = phone // the cycle that kept the store open
        override fun onRecordsChanged(recordIds: List<String>, fromRelay: Boolean) { owner.syncStatus() }
        override fun onSyncStatus(status: SyncStatus) {}
        override fun onSyncWarning(message: String) {}
        override fun onAccessRefused(message: String) {}
        override fun onReconciliation(report: Reconciliation) {}
    }
    phone.setListener(heard)
    phone.createContact(NewContact(name = "Ana Silva"))
    phone.shutdown()
    phone.shutdown() // twice does nothing
    val closed = assertFailsWith<MusterException.NotAllowed> { phone.contactCount() }
    assertTrue(closed.message!!.contains("closed"), closed.message)
    assertTrue(!File("$path-wal").exists(), "the store was closed (its WAL folded in)")
    val again = Muster.open(path)
    assertEquals(1L, again.contactCount())
    again.close()
    phone.close()
}

// Issue 18: background-sync hooks: syncNow with a time limit, the network
// coming back, and a revoked token told through onAccessRefused.
fun backgroundSyncHooks() = Relay(serverBin).use { relay ->
    val silent = java.net.ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"))
    val held = ConcurrentLinkedQueue<java.net.Socket>()
    Thread { runCatching { while (true) held += silent.accept() } }.apply { isDaemon = true }.start()
    val phone = Muster.open(tempStore("hooks.db"))
    val enrolled = runBlocking { phone.enroll("ws://127.0.0.1:${silent.localPort}", "some-token") }
    assertTrue(!enrolled.reachedRelay)
    val started = System.nanoTime()
    val late = assertFailsWith<MusterException.Network> { runBlocking { phone.syncNow(timeoutMs = 300uL) } }
    assertTrue(late.message!!.contains("ran out"), late.message)
    assertTrue(System.nanoTime() - started < 5_000_000_000L, "given up, not waited out")
    phone.networkAvailable() // not live: nothing to do, no error
    phone.shutdown()
    silent.close()

    val (token, id) = relay.tokenWithId("coordinator")
    val desk = Muster.open(tempStore("desk.db"))
    val heard = Heard()
    desk.setListener(heard)
    runBlocking { desk.enroll(relay.url, token) }
    desk.startSync()
    eventually("live") { desk.syncStatus().activity is SyncActivity.Live }
    relay.revoke(id)
    eventually("the revocation is told") { heard.refusals.isNotEmpty() }
    assertTrue(heard.refusals.single().contains("revoked"), heard.refusals.single())
    val failed = desk.syncStatus().activity
    assertTrue(failed is SyncActivity.Failed && failed.permanent, "$failed")
    desk.shutdown()
}

// Issue 18: live sync tells what merged, as syncNow's report does.
fun liveSyncTellsWhatMerged() = Relay(serverBin).use { relay ->
    val office = Muster.open(tempStore("office.db"))
    val desk = Muster.open(tempStore("desk.db"))
    runBlocking {
        office.enroll(relay.url, relay.token("coordinator"))
        desk.enroll(relay.url, relay.token("coordinator"))
    }
    val ana = office.createContact(NewContact(name = "Ana Silva"))
    val twin = office.createContact(NewContact(name = "Ana Silva"))
    runBlocking { office.syncNow() }
    val heard = Heard()
    desk.setListener(heard)
    desk.startSync()
    eventually("the desk holds both") { desk.contactCount() == 2L }
    office.merge(ana, twin)
    runBlocking { office.syncNow() }
    eventually("the merge is told") { heard.reports.any { r -> r.merged.any { it.duplicate == twin && it.kept == ana } } }
    desk.shutdown()
    office.shutdown()
}

// Issue 18: live queries: a roster and a contact handed over at once and
// again when they change; cancelled, a query hears nothing more.
fun liveQueriesHandOverEachNewAnswer() {
    val phone = Muster.open(tempStore("live-queries.db"))
    val gala = phone.createEvent(NewEvent(title = "Gala", startsAt = Instant.now() + Span.ofDays(1), capacity = 1))
    val rosters = ConcurrentLinkedQueue<List<RosterLine>>()
    val contacts = java.util.Collections.synchronizedList(mutableListOf<Contact?>()) // a queue holds no null
    val roster = phone.observeRoster(gala, object : RosterObserver {
        override fun onRoster(lines: List<RosterLine>) { rosters += lines }
    })
    eventually("the first roster") { rosters.size == 1 }
    assertTrue(rosters.single().isEmpty())
    val ana = phone.createContact(NewContact(name = "Ana Silva"))
    val watched = phone.observeContact(ana, object : ContactObserver {
        override fun onContact(contact: Contact?) { contacts += contact }
    })
    phone.register(gala, ana, false)
    val bo = phone.createContact(NewContact(name = "Bo Chen"))
    phone.register(gala, bo, false)
    eventually("the roster with Ana, then Bo waiting") {
        rosters.lastOrNull()?.map { it.status } == listOf(SignupStatus.REGISTERED, SignupStatus.WAITLISTED)
    }
    phone.updateContact(ana, ContactEdit(preferredName = "Ani"))
    eventually("the contact's new name") { contacts.lastOrNull()?.preferredName == "Ani" }
    roster.cancel()
    val before = rosters.size
    phone.cancel(gala, ana)
    phone.eraseContact(ana)
    eventually("the contact is gone") { contacts.isNotEmpty() && contacts.last() == null }
    assertEquals(before, rosters.size, "a cancelled query hears nothing more")
    watched.cancel()
    phone.shutdown()
}

// Issue 18, defect 4: messages a person can read: a junk file is not said
// to be encrypted, an empty id says none was given, no "(code 4)" or
// "(os error 111)".
fun messagesAPersonCanRead() = Relay(serverBin).use { relay ->
    val junk = File(tempStore("junk.db")).apply { writeText("this is not a database ".repeat(4096).take(8192)) }
    val notAStore = assertFailsWith<MusterException.Storage> { Muster.open(junk.path) }
    assertTrue(!notAStore.message!!.contains("encryption key"), notAStore.message)
    val phone = Muster.open(tempStore("words.db"))
    assertEquals("no event id was given", assertFailsWith<MusterException.NotFound> { phone.roster("") }.message)
    val refused = assertFailsWith<MusterException.Unauthorized> { runBlocking { phone.enroll(relay.url, "not-a-token") } }
    assertTrue(!refused.message!!.contains("code"), refused.message)
    val closed = java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1")).use { it.localPort }
    val offline = runBlocking { phone.enroll("ws://127.0.0.1:$closed", "some-token") }
    val problem = offline.problem!!
    assertTrue(problem.contains("connection refused") && !problem.contains("os error"), problem)
    phone.shutdown()
}

fun main(args: Array<String>) {
    serverBin = args.getOrNull(0) ?: error("usage: MusterTest PATH_TO_MUSTER_SERVER")
    val tests = listOf(
        "two phones capture offline, sync and end identical" to ::twoPhonesCaptureOfflineSyncAndEndIdentical,
        "listener callbacks arrive" to ::listenerCallbacksArrive,
        "errors become Kotlin exceptions with their message" to ::errorsBecomeKotlinExceptions,
        "closing and reopening keeps everything" to ::closingAndReopeningKeepsEverything,
        "many threads at once while live sync runs" to ::manyThreadsAtOnceWhileLiveSyncRuns,
        "field conflicts show both values" to ::fieldConflictsShowBothValues,
        "a merged person holds one seat and cancels as one" to ::aMergedPersonHoldsOneSeat,
        "a listener that throws keeps hearing" to ::aListenerThatThrowsKeepsHearing,
        "enrolling a live phone again keeps it syncing" to ::enrollingALivePhoneAgainKeepsItSyncing,
        "lists page and filter, events are edited" to ::listsPageAndEventsAreEdited,
        "the whole record" to ::theWholeRecord,
        "shutdown closes the store even with a listener" to ::shutdownClosesTheStoreEvenWithAListener,
        "background sync hooks" to ::backgroundSyncHooks,
        "live sync tells what merged" to ::liveSyncTellsWhatMerged,
        "live queries hand over each new answer" to ::liveQueriesHandOverEachNewAnswer,
        "messages a person can read" to ::messagesAPersonCanRead,
    )
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            println("ok     $name")
        } catch (e: Throwable) {
            failed++
            println("FAILED $name")
            e.printStackTrace(System.out)
        }
    }
    println("kotlin: ${tests.size - failed} passed, $failed failed")
    tempDirs.forEach { it.deleteRecursively() }
    exitProcess(if (failed == 0) 0 else 1)
}
