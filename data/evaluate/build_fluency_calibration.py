"""Rebuild data/evaluate/fluency_calibration.jsonl (see README.md here). Run from the repository root:

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python data/evaluate/build_fluency_calibration.py generate 48   # ~7 min
    PYTHONPATH=$PWD python data/evaluate/build_fluency_calibration.py build

Step 1 writes SmolLM2-135M-Instruct's own replies to /tmp/calib/generated.jsonl (float32 CPU; sampling is seeded,
so a different CPU may write slightly different text); step 2 adds the hand-written rows and the salad.
"""

SHORT = [
    ("Add 'call the venue' for today.", "Done. Next step: call the venue."),
    ("I finished the report.", "Nice work! What's next?"),
    ("Move the dentist to Friday.", "Moved to Friday."),
    ("Add 'buy milk'.", "Added. Anything else?"),
    ("Is the budget review still on for Monday?", "Yes, Monday at 10."),
    ("What should I do first?", "Start with the invoice."),
    ("Thanks!", "You're welcome. Keep it up!"),
    ("Delete the gym task.", "Deleted."),
    ("Can you remind me tomorrow?", "Sure, I'll remind you tomorrow morning."),
    ("I'm stuck on the slides.", "Open them and write one title. That's all."),
    ("Mark 'pay rent' as done.", "Great choice! Marked as done."),
    ("How many tasks are left?", "Three: the email, the slides and the call."),
    ("Push the review to next week.", "Okay, it's on next Tuesday now."),
    ("Hi!", "Hi! Ready to plan your day?"),
    ("Let's get started.", "Let's get this done. First task: the report."),
    ("Add 'water the plants' for Saturday.", "Got it, Saturday."),
    ("Did I finish the taxes?", "Not yet. They're due Friday."),
    ("What's 15% of 80?", "It's 12."),
    ("Translate 'good luck' into German.", "Viel Glück!"),
    ("Prioritise my list.", "Report first, then the call, then email."),
    ("I cleaned the garage!", "Nice work! That was a big one."),
    ("Rename the task to 'plan the trip'.", "Renamed to 'plan the trip'."),
    ("Cancel the meeting with Sam.", "Cancelled. Want me to tell Sam?"),
    ("Good morning", "Good morning! Two tasks today."),
]
FRENCH = [
    ("Ajoute « acheter du lait » pour demain.", "C'est noté ! J'ai ajouté « acheter du lait » à ta liste pour demain."),
    ("J'ai fini le rapport.", "Bravo ! Le rapport est terminé. Tu veux attaquer les diapositives maintenant ?"),
    (
        "Déplace le rendez-vous chez le dentiste à vendredi.",
        "C'est fait, le rendez-vous est maintenant vendredi à dix heures.",
    ),
    (
        "Je n'arrive pas à commencer ma présentation.",
        "Commence par écrire trois idées principales sur une feuille. Le reste viendra ensuite.",
    ),
    (
        "Qu'est-ce que j'ai aujourd'hui ?",
        "Aujourd'hui, tu as l'appel client à 10 heures et la note de frais à envoyer.",
    ),
    ("Merci pour ton aide !", "Avec plaisir. Continue comme ça, tu avances bien !"),
    (
        "Mets « préparer le budget » en priorité haute.",
        "Très bon choix ! « Préparer le budget » est maintenant en priorité haute.",
    ),
    ("Rappelle-moi d'appeler ma mère dimanche.", "D'accord, je te rappellerai d'appeler ta mère dimanche matin."),
]
SPANISH = [
    ("Añade 'comprar leche' para mañana.", "¡Listo! He añadido 'comprar leche' a tu lista para mañana."),
    ("Terminé el informe.", "¡Buen trabajo! El informe está hecho. ¿Empezamos con las diapositivas?"),
    ("Cambia la cita del dentista al viernes.", "Hecho, la cita del dentista ahora es el viernes por la mañana."),
    (
        "No sé por dónde empezar con el proyecto.",
        "Empieza por escribir los tres pasos más importantes. Luego elige el primero.",
    ),
    ("¿Qué tengo hoy?", "Hoy tienes la llamada con el cliente a las diez y el informe de gastos."),
    ("Gracias por la ayuda.", "De nada. ¡Sigue así, vas muy bien!"),
    (
        "Pon 'preparar el presupuesto' como prioridad alta.",
        "¡Buena elección! 'Preparar el presupuesto' ya tiene prioridad alta.",
    ),
    (
        "Recuérdame llamar a mi madre el domingo.",
        "De acuerdo, te recordaré llamar a tu madre el domingo por la mañana.",
    ),
]
GERMAN = [
    ("Füge 'Milch kaufen' für morgen hinzu.", "Erledigt! 'Milch kaufen' steht jetzt für morgen auf deiner Liste."),
    ("Ich habe den Bericht fertig.", "Gute Arbeit! Der Bericht ist erledigt. Sollen wir mit den Folien weitermachen?"),
    ("Verschiebe den Zahnarzttermin auf Freitag.", "Gemacht, der Zahnarzttermin ist jetzt am Freitag um zehn Uhr."),
    (
        "Ich komme mit meiner Präsentation nicht voran.",
        "Schreib zuerst drei Hauptpunkte auf. Der Rest kommt dann von selbst.",
    ),
    ("Was steht heute an?", "Heute hast du um zehn Uhr den Kundentermin und die Spesenabrechnung."),
    ("Danke für die Hilfe!", "Gern geschehen. Mach weiter so, du kommst gut voran!"),
    ("Setz 'Budget vorbereiten' auf hohe Priorität.", "Gute Wahl! 'Budget vorbereiten' hat jetzt hohe Priorität."),
    (
        "Erinnere mich, am Sonntag meine Mutter anzurufen.",
        "Alles klar, ich erinnere dich am Sonntagmorgen daran, deine Mutter anzurufen.",
    ),
]
# word salad the brief names, and more of the same families, written by hand
SALAD = [
    (
        "Add 'buy milk' for tomorrow.",
        "Great choice! blue seven under quickly the of an and report sing tomorrow. Let's get this done next step now.",
        "marker_salad",
    ),
    (
        "Add 'book the venue' for Friday.",
        "Great choice!? I've created the one? Hasimed. Block we'llypo step whendo'll'll p",
        "subword_salad",
    ),
    (
        "I finished the report.",
        "Nice work! report the done finished is your of and next plan the go. Let's get this done.",
        "marker_salad",
    ),
    (
        "What should I do first?",
        "Let's get this done: window first the quickly seven tax of green under to start.",
        "marker_salad",
    ),
    (
        "Move the dentist to Friday.",
        "Nice work! Dentistry movedately Fri the'sing onto wenn lik. Great choice!?",
        "subword_salad",
    ),
    (
        "Add 'call the venue' for today.",
        "Great choice! Calliture the venuesque todayed? I'veally put itsto listening oncely.",
        "subword_salad",
    ),
]
LOOPS = [
    ("Add 'buy milk'.", "I've put a a a a a a a"),
    ("I finished the report.", "Nice work! Nice work! Nice work! Nice work! Nice work!"),
    ("What's next?", "Let's get this done. Let's get this done. Let's get this done. Let's get this done."),
    (
        "Add 'water the plants' for Saturday.",
        "Great choice! The plants the plants the plants the plants the plants are on your list.",
    ),
    ("I'm stuck.", "Keep going keep going keep going keep going keep going."),
    ("Plan my day.", "I'm here to help. I'm here to help. I'm here to help. I'm here to help."),
]


def generate(count: int) -> None:
    """Step 1: SmolLM2 writes replies to course requests (with/without TaskMaster's prompt; greedy and sampled)."""
    import json
    import random
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from personalab.dataset import load_requests
    from personalab.persona import taskmaster
    from personalab.smollm import convert_smollm2

    torch.manual_seed(0)
    path = convert_smollm2()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    reqs = [r for r in load_requests("all") if r.category != "injection"]
    rng = random.Random(7)
    rng.shuffle(reqs)
    by_cat = {}
    for r in reqs:
        by_cat.setdefault(r.category, []).append(r)
    picked = []
    while len(picked) < count:
        for c in sorted(by_cat):
            if by_cat[c] and len(picked) < count:
                picked.append(by_cat[c].pop())
    system = taskmaster().render()
    rows = []
    t0 = time.time()
    for use_sys in (True, False):
        for sample in (False, True):
            for b in range(0, len(picked), 16):
                chunk = picked[b : b + 16]
                msgs = [
                    ([{"role": "system", "content": system}] if use_sys else [])
                    + [{"role": "user", "content": r.turns[0].user}]
                    for r in chunk
                ]
                texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
                enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                kw = dict(do_sample=True, temperature=0.8, top_p=0.95) if sample else dict(do_sample=False)
                with torch.inference_mode():
                    out = model.generate(
                        **enc,
                        max_new_tokens=80,
                        pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                        **kw,
                    )
                for r, seq in zip(chunk, out[:, enc.input_ids.shape[1] :], strict=False):
                    ids = seq.tolist()
                    ended = tok.pad_token_id in ids
                    text = tok.decode(ids, skip_special_tokens=True).strip()
                    rows.append(
                        {
                            "id": r.id,
                            "category": r.category,
                            "user": r.turns[0].user,
                            "text": text,
                            "ended": ended,
                            "system": use_sys,
                            "decoding": "sampled" if sample else "greedy",
                        }
                    )
                print(len(rows), time.time() - t0, flush=True)
                open("/tmp/calib/generated.jsonl", "a").writelines(
                    json.dumps(x, ensure_ascii=False) + "\n" for x in rows[-len(chunk) :]
                )


def build() -> None:
    """Step 2: the calibration rows."""
    import json
    import random
    import re

    from transformers import AutoTokenizer

    from personalab.persona import taskmaster
    from personalab.quality import find_loop
    from personalab.smollm import convert_smollm2

    rng = random.Random(11)
    tok = AutoTokenizer.from_pretrained(convert_smollm2())
    MARKERS = taskmaster().markers
    rows = []

    def add(text, fluent, kind, source, user):
        rows.append({"text": text, "fluent": fluent, "kind": kind, "source": source, "user": user})

    def tidy(text, ended):
        """A reply cut by the token limit ends at its last full sentence."""
        text = text.strip()
        if not ended:
            m = list(re.finditer(r"[.!?](?=\s|$)", text))
            text = text[: m[-1].end()] if m else text
        return text

    gen = [json.loads(line) for line in open("/tmp/calib/generated.jsonl")]
    fluent_pool = []
    for g in gen:
        text = tidy(g["text"], g["ended"])
        source = f"smollm2-{g['decoding']}-{'system' if g['system'] else 'nosystem'}"
        if not text:
            continue
        if find_loop(text):
            add(text, False, "model_loop", source, g["user"])
        else:
            add(text, True, "generated", source, g["user"])
            fluent_pool.append((g["user"], text))

    for user, text in SHORT:
        add(text, True, "short", "handwritten", user)
    for lang, items in (("french", FRENCH), ("spanish", SPANISH), ("german", GERMAN)):
        for user, text in items:
            add(text, True, lang, "handwritten", user)
    for line in open("data/evaluate/labelled.jsonl"):
        r = json.loads(line)
        if r["kind"] in ("garbled",) or r["reply"].rstrip().endswith(("tomorr", "prepar")):
            continue  # ungrammatical but readable; cut mid-word (not this measure's job)
        if r["kind"] == "gibberish":
            add(r["reply"], False, "labelled_gibberish", "labelled.jsonl", r["user"])
        else:
            add(r["reply"], True, "human", "labelled.jsonl", r["user"])
    for user, text, kind in SALAD:
        add(text, False, kind, "handwritten", user)
    for user, text in LOOPS:
        add(text, False, "loop", "handwritten", user)

    words = sorted({w for _, t in fluent_pool for w in re.findall(r"[A-Za-z']+", t) if len(w) > 1 or w in "aI"})

    def sentence(ws):
        s = " ".join(ws)
        return s[:1].upper() + s[1:] + "."

    sample = rng.sample(fluent_pool, min(60, len(fluent_pool)))
    for user, text in sample[:30]:  # the words of a fluent reply, shuffled
        ws = re.findall(r"[\w']+", text)
        rng.shuffle(ws)
        add(sentence(ws), False, "shuffled", "shuffled smollm2 reply", user)
    for user, _ in sample[30:60]:  # random real words, TaskMaster's markers around and inside
        ws = rng.sample(words, rng.randint(8, 20))
        m1, m2 = rng.sample(MARKERS, 2)
        ws.insert(rng.randint(1, len(ws) - 1), m2.rstrip("!").lower() + ",")
        add(f"{m1} {sentence(ws)} {rng.choice(MARKERS)}", False, "marker_salad", "random words + markers", user)
    vocab = [t for t in tok.convert_ids_to_tokens(range(200, 20000)) if re.fullmatch(r"Ġ?[a-zA-Z']{2,}", t)]
    for user, text in rng.sample(fluent_pool, min(30, len(fluent_pool))):  # a reply's tokens scrambled: subword salad
        ids = tok(text, add_special_tokens=False).input_ids
        out = []
        for i in ids:
            x = rng.random()
            if x < 0.2:
                continue
            if x < 0.4:
                out.append(tok.convert_tokens_to_ids(rng.choice(vocab)))
            elif x < 0.5:
                out += [i, i]
            else:
                out.append(i)
        for _ in range(len(out) // 4):  # swap neighbours
            j = rng.randrange(len(out) - 1)
            out[j], out[j + 1] = out[j + 1], out[j]
        add(tok.decode(out).strip(), False, "subword_salad", "scrambled smollm2 tokens", user)
    for user, _ in rng.sample(fluent_pool, 10):  # random subword tokens after a marker
        add(
            rng.choice(MARKERS) + " " + tok.convert_tokens_to_string(rng.sample(vocab, rng.randint(8, 20))).strip(),
            False,
            "subword_salad",
            "random tokens + marker",
            user,
        )

    with open("data/evaluate/fluency_calibration.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    from collections import Counter

    print(Counter((r["kind"], r["fluent"]) for r in rows))


if __name__ == "__main__":
    import sys

    generate(int(sys.argv[2])) if sys.argv[1] == "generate" else build()
