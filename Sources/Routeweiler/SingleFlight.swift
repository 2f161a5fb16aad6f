/// One holder per key at a time: the second caller for a key waits until the first releases it.
/// Used so that concurrent calls needing the same credential pay once.
actor SingleFlight {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ key: String) async {
        if !held.contains(key) {
            held.insert(key)
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
        // Ownership was handed over by `release`.
    }

    func release(_ key: String) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()  // the key stays held, now by the next waiter
        } else {
            held.remove(key)
        }
    }
}
