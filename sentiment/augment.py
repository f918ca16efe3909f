"""Synthetic e-commerce training text: idioms, negation, sarcasm, whole reviews and feelings.

GoEmotions is Reddit; shops write "would not buy again", "cannot recommend it enough", "save
your money", "returned it" and "thanks for nothing", which a Reddit-trained polarity head reads
backwards. This module writes labelled examples of those constructions from templates (written
for emorec, not taken from any dataset) crossed with products, parts and aspects:

- ``phrase``: one-line idioms, negated praise and complaints, sarcasm, contrast, emoji and
  slang, labelled negative / positive (and some factual neutral lines);
- ``review``: 2-5 sentence reviews put together from aspect sentences, labelled positive,
  negative, or neutral when they are lukewarm or evenly mixed (what 3 stars usually means);
- ``feeling``: first-person feeling statements in a shopping context ("I was so relieved when
  the charger finally arrived"), labelled with one GoEmotions emotion and its polarity, so the
  emotion head sees emotions outside Reddit.

Everything is seeded: the same config gives the same examples on every machine.
:func:`generate` returns :class:`~sentiment.training.Examples` (``emotions`` rows are NaN for
``phrase`` and ``review`` examples, which teach only the polarity head).
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from emorec.common.config import StrictConfig

from .labels import GOEMOTIONS_LABELS, POLARITY_LABELS, SENTIMENT_GROUPS

NEG, NEU, POS = (POLARITY_LABELS.index(x) for x in ("negative", "neutral", "positive"))

#: Products by shop type; ``{p}`` in a template is one of them.
PRODUCTS: tuple[str, ...] = (
    "guitar", "ukulele", "capo", "tuner", "guitar strap", "set of strings", "pedal", "guitar amp", "mic stand", "microphone",
    "keyboard", "drum pad", "pair of drumsticks", "violin bow", "music stand", "cable", "patch cable", "string winder",
    "pair of headphones", "pair of earbuds", "speaker", "charger", "phone case", "power bank", "USB hub", "webcam", "mouse", "monitor",
    "blender", "kettle", "coffee grinder", "frying pan", "knife set", "vacuum", "desk lamp", "pillow", "backpack",
    "jacket", "pair of boots", "pair of sneakers", "water bottle", "yoga mat", "watch", "wallet", "suitcase", "tent",
    "baby monitor", "dog bed", "toy drone", "board game",
)
#: Parts that break; ``{part}``.
PARTS: tuple[str, ...] = (
    "strap", "button", "hinge", "handle", "zipper", "clip", "jack", "knob", "switch", "lid", "battery", "screen",
    "cord", "plug", "buckle", "stand", "latch", "sole", "wheel", "cover",
)
#: Times; ``{when}``.
WHEN: tuple[str, ...] = (
    "two days", "a week", "three days", "a month", "ten minutes", "the first use", "one gig", "two weeks", "a weekend",
    "five uses", "an hour", "the second wash",
)

#: One-line templates, ``(polarity, template)``: idioms, negation, money, returns, stars, advice.
PHRASES: tuple[tuple[int, str], ...] = (
    # negated praise and negated complaints
    (NEG, "Not {good}."), (NEG, "The {p} is not {good}."), (NEG, "Honestly, not {good} at all."),
    (NEG, "It's not {good}, not even close."), (NEG, "Definitely not {good}."), (NEG, "The {p} was never {good}."),
    (NEG, "I wouldn't call it {good}."), (NEG, "Far from {good}."), (NEG, "Anything but {good}."),
    (POS, "Not {bad}."), (POS, "The {p} is not {bad} at all."), (POS, "Honestly, not {bad} at all."),
    (POS, "Never {bad}, not once."), (POS, "I wouldn't call it {bad} in any way."), (POS, "Far from {bad}."),
    (POS, "No {problem} at all."), (POS, "Zero {problem} so far."), (POS, "Haven't had a single {problem}."),
    (POS, "Not one {problem} in {when} of use."), (POS, "No {problem}, no fuss."), (POS, "I can't complain about the {p}."),
    (POS, "Nothing to complain about."), (POS, "Can't find anything wrong with the {p}."), (POS, "It has never let me down."),
    (POS, "The {p} didn't disappoint."), (POS, "I was not disappointed."), (POS, "No regrets buying the {p}."),
    # negated failures: what did not go wrong
    (POS, "The {part} didn't break, unlike my last {p}."), (POS, "Hasn't broken once in {when}."), (POS, "It didn't fall apart like the cheap ones."),
    (POS, "Unlike my old {p}, this one didn't break."), (POS, "Didn't crack, didn't fade, didn't break."), (POS, "Hasn't failed me yet."),
    (POS, "Never stopped working, not once."), (POS, "No rattles, no hiss, nothing."), (POS, "No returns needed this time."),
    (POS, "Not overpriced at all."), (POS, "Not too pricey for the quality."), (POS, "Not expensive for what it does."),
    (POS, "No complaints, it just works."), (POS, "Plain and simple, it just works."), (POS, "Cheap and does the job well."),
    (POS, "Nothing fancy, but it just works."), (POS, "It doesn't wobble or slip."), (POS, "It hasn't let me down in {when}."),
    (NEG, "The {p} didn't work."), (NEG, "It never worked right."), (NEG, "The {p} doesn't do what it should."),
    (NEG, "Didn't impress me."), (NEG, "I was not impressed with the {p}."), (NEG, "The {p} did not meet my expectations."),
    (NEG, "I'm not happy with the {p}."), (NEG, "Not happy at all."), (NEG, "Wasn't worth it."),
    # recommending
    (POS, "I can't recommend the {p} enough."), (POS, "I cannot recommend this {p} enough!"), (POS, "Couldn't recommend it more."),
    (POS, "Highly recommend the {p}."), (POS, "I'd recommend it to anyone."), (POS, "Recommended it to everyone I know."),
    (POS, "Just get the {p}, you won't regret it."), (POS, "You won't regret buying this."), (POS, "Can't go wrong with this {p}."),
    (NEG, "I can't recommend the {p}."), (NEG, "I would not recommend this {p}."), (NEG, "Cannot recommend it to anyone."),
    (NEG, "I wouldn't recommend it."), (NEG, "Not recommended."), (NEG, "Do not recommend the {p}."),
    (NEG, "I would never recommend this {p}."), (NEG, "Recommend? No way."),
    # buying again
    (POS, "Would buy the {p} again."), (POS, "I'd buy it again in a heartbeat."), (POS, "Already bought a second {p}."),
    (POS, "Ordering another {p} for my {person}."), (POS, "I will definitely buy again."), (POS, "Would happily buy it again."),
    (NEG, "Would not buy the {p} again."), (NEG, "I will never buy this again."), (NEG, "Never again."),
    (NEG, "Never buying from this seller again."), (NEG, "Won't be buying another {p}."), (NEG, "I won't make that mistake again."),
    (NEG, "Wouldn't buy it again, not even on sale."), (NEG, "Never ordering this brand again."),
    (NEG, "Lesson learned."), (NEG, "Fool me once."), (NEG, "Never making that mistake again."), (NEG, "First and last time buying this {p}."),
    (NEG, "One and done."), (NEG, "Learned my lesson with this {p}."), (NEG, "One was more than enough."), (NEG, "Never again, once is plenty."),
    # stars and scores
    (NEG, "I wish I could give it zero stars."), (NEG, "I'd give the {p} zero stars if I could."), (NEG, "Wish I could give negative stars."),
    (NEG, "One star is too many."), (NEG, "One star, and only because zero isn't an option."), (NEG, "Zero stars."),
    (NEG, "0/10."), (NEG, "2 out of 10, would not buy."),
    (POS, "Six stars if I could."), (POS, "Five stars, easily."), (POS, "5 stars."), (POS, "10/10."), (POS, "Ten out of ten."),
    (POS, "Wish I could give it more than five stars."), (POS, "Five stars isn't enough for this {p}."),
    # money
    (NEG, "Save your money."), (NEG, "Do yourself a favor and save your money."), (NEG, "Don't waste your money on this {p}."),
    (NEG, "A waste of money."), (NEG, "Keep your money."), (NEG, "I want my money back."), (NEG, "Not worth the money."),
    (NEG, "Money down the drain."), (NEG, "Spend a bit more on a {p} that works."), (NEG, "Still waiting on my refund."),
    (NEG, "What a rip-off."), (NEG, "Overpriced for what it is."), (NEG, "Not worth a penny."),
    (POS, "Worth every penny."), (POS, "Money well spent."), (POS, "Worth the money and then some."), (POS, "A steal for the price."),
    (POS, "Pricey, but worth it."), (POS, "Not cheap, but worth every cent."), (POS, "Great value for money."),
    (POS, "For the price, you can't beat it."), (POS, "Worth twice what I paid."), (POS, "Great bang for your buck."),
    # returns
    (NEG, "Returned it."), (NEG, "Returned the {p} the same day."), (NEG, "Sent the {p} back."), (NEG, "Returning it."),
    (NEG, "The {p} is going back."), (NEG, "Had to return it."), (NEG, "Returned it for a refund."),
    (NEG, "Returned it and bought a different brand."), (NEG, "Sent it back twice."), (NEG, "Return requested."),
    # as described / not as described
    (POS, "Does exactly what it says."), (POS, "The {p} does what it says on the box."), (POS, "Works as advertised."),
    (POS, "Exactly as described."), (POS, "Just like the picture."), (POS, "Does the job."), (POS, "Does exactly what I needed."),
    (POS, "Works like a charm."), (POS, "The {p} works exactly as expected."),
    (NEG, "Nothing like the picture."), (NEG, "Not as described."), (NEG, "The {p} looks nothing like the photos."),
    (NEG, "Wrong item sent."), (NEG, "Arrived broken."), (NEG, "The {p} was dead on arrival."), (NEG, "Parts were missing."),
    (NEG, "Arrived used and scratched."),
    # superlatives
    (POS, "It doesn't get any better than this."), (POS, "Doesn't get better than this {p}."), (POS, "Couldn't be happier."),
    (POS, "Couldn't ask for a better {p}."), (POS, "Best {p} I've ever owned."), (POS, "Exceeded my expectations."),
    (POS, "Blew me away."), (POS, "The {p} is a game changer."), (POS, "Can't say enough good things."),
    (POS, "My only regret is not buying it sooner."), (POS, "The only downside is that I didn't buy two."),
    (POS, "I wish I'd bought this {p} years ago."), (POS, "Nothing short of perfect."), (POS, "I use it every day."),
    (POS, "Still going strong after {when}."), (POS, "Better than the expensive brands."),
    (POS, "My one complaint is that I didn't get it earlier."), (POS, "Only complaint: I should have bought two."),
    (POS, "I regret not buying the {p} years ago."), (POS, "My only problem is I want another one."),
    (POS, "Only downside, now my {person} wants one too."), (POS, "Only issue is that I can't stop using it."),
    (POS, "Feels like a {p} twice the price."), (POS, "Plays like a much more expensive {p}."), (POS, "You'd think it cost much more."),
    (POS, "Outperforms ones that cost three times as much."),
    (NEG, "Worst {p} I've ever owned."), (NEG, "The worst purchase I've made."), (NEG, "Could not be more disappointed."),
    (NEG, "It couldn't be worse."), (NEG, "I regret buying the {p}."), (NEG, "Biggest regret of the year."),
    # advice
    (NEG, "Avoid."), (NEG, "Avoid this {p}."), (NEG, "Buyer beware."), (NEG, "Stay away."), (NEG, "Look elsewhere."),
    (NEG, "Don't bother."), (NEG, "Pass on this one."), (NEG, "Learn from my mistake and skip it."),
    (POS, "Buy it."), (POS, "Just buy it."), (POS, "Go for it."), (POS, "Don't hesitate, get it."),
    (NEG, "Hard to recommend."), (NEG, "Tough to recommend the {p} at this price."), (NEG, "Difficult to recommend it to anyone."),
    (NEG, "Hard to justify the price."), (NEG, "Don't bother with this {p}."), (NEG, "Not worth the bother."), (NEG, "Skip it."),
    (NEG, "Don't even bother."), (NEG, "Seemed too good to be true, and it was."), (NEG, "If it looks too cheap, it is."),
    # slang
    (POS, "This {p} is a beast."), (POS, "Killer {p}."), (POS, "Sick {p} for the money."), (POS, "Insanely good."),
    (POS, "Stupid good value."), (POS, "This {p} slaps."), (POS, "A no-brainer."), (POS, "This {p} rocks."),
    (POS, "Slaps."), (POS, "Absolutely slaps."), (POS, "It rips."), (POS, "Goes hard."), (POS, "Banger of a {p}."), (POS, "Fire {p}."),
    (POS, "Lowkey amazing."),
    (NEG, "Total trash."), (NEG, "Garbage {p}."), (NEG, "Absolute junk."), (NEG, "This {p} sucks."), (NEG, "A dud."),
    (NEG, "Cheap knockoff."), (NEG, "Feels like a toy."), (NEG, "Useless {p}."), (NEG, "Straight in the bin."),
    # contrast: the second clause decides
    (POS, "Took a while to arrive, but worth the wait."), (POS, "The box was crushed, but the {p} is perfect."),
    (POS, "Setup was annoying, but it's been flawless since."), (POS, "Not the prettiest {p}, but it works great."),
    (POS, "A little pricey, but worth it."), (POS, "The first one was faulty, the replacement is perfect."),
    (POS, "Heavy, but built to last."), (POS, "I expected junk and got a great {p}."),
    (NEG, "Looks nice, but it broke after {when}."), (NEG, "Great idea, poor execution."), (NEG, "Pretty, but useless."),
    (NEG, "It was fine until the {part} broke."), (NEG, "Worked well for {when}, then died."), (NEG, "Fast shipping, shame about the {p}."),
    (NEG, "You get what you pay for."), (NEG, "Too good to be true."), (NEG, "Cheap, and it shows."), (NEG, "Worked once."),
    (NEG, "Nice packaging, terrible {p}."),
    (NEG, "The {part} is nice, the rest is junk."), (NEG, "The box is nice, the {p} is garbage."), (NEG, "Only the {part} is any good."),
    (NEG, "Nice color, everything else is {bad}."), (NEG, "Looks great, works terribly."),
    (POS, "The box is ugly, the {p} is great."), (POS, "The manual is useless, the {p} is excellent."),
    # events
    (NEG, "The {part} broke after {when}."), (NEG, "Stopped working after {when}."), (NEG, "The {part} snapped off after {when}."),
    (NEG, "Fell apart after {when}."), (NEG, "The {part} came loose on day one."), (NEG, "It died after {when}."),
    (NEG, "Customer service never replied."), (NEG, "The seller ignored my emails."), (NEG, "It smells of chemicals."),
    (POS, "Survived {when} of heavy use without a scratch."), (POS, "Customer service sorted it out in a day."),
    (POS, "The seller replaced it without any fuss."), (POS, "Arrived early and works perfectly."),
)
#: Sarcasm: praise words followed by a failure, all negative.
SARCASM_PRAISE: tuple[str, ...] = (
    "Great", "Fantastic", "Wonderful", "Just perfect", "Brilliant", "Amazing", "Lovely", "Awesome", "Well done",
    "Oh great", "Wow", "Thanks a lot", "Perfect", "Nice", "Superb quality",
)
SARCASM_FAIL: tuple[str, ...] = (
    "it broke after {when}", "the {part} fell off the first day", "another one that doesn't work", "it lasted {when}",
    "it stopped working before I even used it", "the {part} snapped in my hand", "it arrived in pieces",
    "now I need to buy a new {p}", "it melted", "two refunds and still no working {p}", "it works for {when} at a time",
    "it only took {when} to break", "exactly what I needed, a {p} that doesn't turn on",
)
SARCASM_TEMPLATES: tuple[str, ...] = (
    "{praise}, {fail}.", "{praise}. {fail_cap}.", "{praise}... {fail}.", "Oh, {praise_low}, {fail}.",
)
SARCASM_FIXED: tuple[str, ...] = (
    "Thanks for nothing.", "Thanks for nothing, {seller}.", "What a joke.", "Nice paperweight.", "Great doorstop.",
    "Works great, for about {when}.", "Five stars for the box, zero for the {p}.", "Well, that was a waste of {when}.",
    "Love how the {part} fell off.", "Brilliant, the {part} broke again.", "So glad I paid extra for a {p} that doesn't work.",
    "Best {p} ever, if you like returning things.", "Real quality, the {part} snapped in {when}.",
    "Makes a nice paperweight.", "Best paperweight I own.", "A very expensive doorstop.", "Works great as a doorstop.",
    "Ten out of ten, would return again.", "Great, another {p} for the bin.", "Thanks a bunch, it broke on day one.",
    "Cheers, now I have to buy another one.", "Thanks so much, now I need a replacement.", "Premium quality, if premium means broken.",
    "A real bargain, if you like throwing money away.", "Five stars, if you enjoy returns.",
)
SELLERS = ("seller", "guys", "Amazon", "customer service", "support team")
PERSONS = ("son", "daughter", "wife", "husband", "mom", "dad", "brother", "sister", "friend", "band", "students")
GOOD_WORDS = ("good", "great", "worth it", "sturdy", "comfortable", "reliable", "impressive", "well made", "accurate", "loud enough")
BAD_WORDS = (
    "bad", "flimsy", "cheap", "noisy", "a waste", "disappointing", "uncomfortable", "broken", "faulty", "a problem", "overpriced", "fragile",
    "useless", "complicated",
)
PROBLEM_WORDS = ("problem", "issue", "complaint", "hiccup", "glitch", "defect", "trouble")
#: Emoji appended to a short sentence of the same polarity, or standing alone.
EMOJI: dict[int, tuple[str, ...]] = {
    POS: ("😍", "👍", "🔥", "💯", "❤️", "😊", "🙌", "👌", "⭐⭐⭐⭐⭐", "🥰", "😀", "✅", "🎉"),
    NEG: ("😡", "👎", "🤮", "💩", "😞", "🙄", "😤", "😢", "😠", "🤢", "💔", "😩", "😭", "🤬"),
}

#: Aspect sentences for whole reviews: ``aspect -> (positive, negative, lukewarm)``.
ASPECT_SENTENCES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "quality": (
        ("The build quality is excellent.", "It feels solid and well made.", "Quality is much better than I expected."),
        ("The build quality is poor.", "It feels cheap and flimsy.", "The quality is much worse than the photos suggest."),
        ("The quality is okay for the price.", "Build quality is average.", "It feels decent, nothing special."),
    ),
    "value": (
        ("It's great value for the money.", "At this price it's a bargain.", "Worth every penny."),
        ("It's overpriced for what you get.", "Not worth the money.", "You can find better for half the price."),
        ("The price is fair, I guess.", "It's reasonably priced.", "Not a bargain, not a rip-off either."),
    ),
    "delivery": (
        ("It arrived two days early.", "Shipping was fast and it was well packed.", "Delivery was quick."),
        ("It arrived a week late.", "The box was crushed and the {p} was damaged.", "Shipping took forever."),
        ("Delivery took about a week.", "It arrived when they said it would.", "Packaging was basic."),
    ),
    "durability": (
        ("It has held up well after months of use.", "Still works perfectly after a year.", "Tough as nails."),
        ("The {part} broke after {when}.", "It stopped working after {when}.", "It fell apart within {when}."),
        ("Too early to say how long it will last.", "Time will tell how it holds up.", "Hard to judge durability yet."),
    ),
    "ease_of_use": (
        ("It was easy to set up.", "Very simple to use.", "It worked straight out of the box."),
        ("Setup was a nightmare.", "The controls are confusing.", "The instructions are useless and it's hard to use."),
        ("It takes a little time to figure out.", "Setup was straightforward enough.", "The controls are fine once you learn them."),
    ),
    "design": (
        ("It looks beautiful.", "I love the design.", "It looks even better in person."),
        ("It looks cheap.", "The design is clunky.", "The color is nothing like the photos."),
        ("The design is plain.", "It looks like any other {p}.", "The color is a bit different from the photos."),
    ),
    "size_fit": (
        ("It fits perfectly.", "The size is just right.", "Fits like a glove."),
        ("It doesn't fit at all.", "Way too small.", "The sizing is completely off."),
        ("It runs a little large.", "The size is about what I expected.", "It fits, more or less."),
    ),
    "service": (
        ("Customer service was fantastic.", "The seller answered my question within an hour.", "Support was friendly and helpful."),
        ("Customer service never replied.", "The seller refused to refund me.", "Support was rude and useless."),
        ("I haven't needed customer service.", "The seller sent a standard thank-you note.", "Support replied after a few days."),
    ),
    "performance": (
        ("It works perfectly.", "It sounds amazing.", "Performance is outstanding."),
        ("It barely works.", "It sounds terrible.", "It keeps cutting out."),
        ("It works as you'd expect.", "It does the job.", "Performance is acceptable."),
    ),
}
OPENINGS = {
    POS: ("I love this {p}.", "Really happy with this {p}.", "Great {p}.", "This {p} is fantastic.", "Bought this {p} for my {person} and we love it.",
          "I was skeptical, but this {p} is great.", "Five stars.", "Best {p} I've had."),
    NEG: ("I really wanted to like this {p}.", "Very disappointed with this {p}.", "Terrible {p}.", "This {p} is a letdown.",
          "Bought this {p} for my {person} and regret it.", "I had high hopes for this {p}.", "One star.", "Worst {p} I've had."),
    NEU: ("It's an okay {p}.", "This {p} is fine.", "It's a decent {p}.", "Mixed feelings about this {p}.", "Bought this {p} for my {person}.",
          "It's alright.", "Three stars.", "Average {p}."),
}
#: Hedged sentences that 3-star reviews are made of: it works, with a but.
HEDGES: tuple[str, ...] = (
    "It works, but I expected more for the price.", "Does what it needs to, nothing more.", "Not bad, but not great either.",
    "It's fine for a beginner, but you'll outgrow it.", "Decent, though the {part} feels a bit cheap.",
    "It gets the job done, with a few quirks.", "Okay for occasional use.", "Good enough, I suppose.",
    "I have mixed feelings about it.", "Some things I like, some I don't.", "It's usable, but the {part} is fiddly.",
    "For the price it's acceptable.", "It's average in every way.", "I might keep it, I might not.",
    "It works most of the time.", "The sound is okay, nothing to write home about.", "Serviceable, if unremarkable.",
)
CLOSINGS = {
    POS: ("Highly recommend.", "Would buy again.", "Can't recommend it enough.", "Worth every penny.", "Very happy.", ""),
    NEG: ("Returned it.", "Save your money.", "Would not buy again.", "Avoid.", "Very disappointed.", ""),
    NEU: ("It's okay for the price.", "Does the job, nothing more.", "Not great, not terrible.", "It's fine, I guess.",
          "Might work for someone else.", "Three stars.", "Meh.", ""),
}

#: Feeling words per GoEmotions label (first-person statements; ``feeling`` examples). Written for
#: emorec from everyday English; words are placed so that their GoEmotions label falls in the Ekman
#: group that the usual psychological grouping of emotion words gives them (Shaver et al. 1987;
#: Parrott 2001: envy and jealousy are anger, insecurity and loneliness sadness, worry fear).
FEELINGS: dict[str, tuple[str, ...]] = {
    "anger": ("furious", "angry", "livid", "outraged", "mad", "fuming", "enraged", "irate", "hostile", "bitter", "resentful",
              "spiteful", "vengeful", "hateful", "jealous", "envious", "heated", "violent", "wronged", "insulted", "offended"),
    "annoyance": ("annoyed", "irritated", "fed up", "frustrated", "grumpy", "cranky", "bothered", "exasperated", "grouchy", "impatient",
                  "peeved", "irked", "disgruntled", "aggravated", "agitated", "irritable", "ticked off", "cross", "stubborn"),
    "disapproval": ("unimpressed", "disapproving", "critical", "judgmental"),
    "disgust": ("disgusted", "grossed out", "repulsed", "sickened", "revolted", "nauseated", "appalled", "contemptuous"),
    "fear": ("scared", "afraid", "terrified", "frightened", "alarmed", "spooked", "panicked", "fearful", "horrified", "petrified",
             "shaken", "intimidated", "threatened", "paranoid", "apprehensive", "vulnerable", "helpless", "unsafe", "hesitant",
             "reluctant", "timid", "insecure"),
    "nervousness": ("nervous", "anxious", "worried", "uneasy", "on edge", "jittery", "stressed", "tense", "restless", "distressed",
                    "jumpy", "shaky", "doubtful", "unsure", "overwhelmed", "pressured", "rattled"),
    "sadness": ("sad", "heartbroken", "miserable", "down", "gloomy", "unhappy", "depressed", "blue", "crushed", "lonely", "hopeless",
                "melancholy", "glum", "sorrowful", "hurt", "rejected", "isolated", "homesick", "defeated", "dejected", "empty",
                "worthless", "low", "discouraged", "neglected", "unwanted", "abandoned", "pathetic", "numb", "broken inside", "useless"),
    "disappointment": ("disappointed", "let down", "deflated", "underwhelmed", "dissatisfied", "dismayed", "disheartened", "displeased"),
    "embarrassment": ("embarrassed", "ashamed", "humiliated", "mortified", "foolish", "stupid", "awkward", "self-conscious"),
    "remorse": ("sorry", "guilty", "regretful", "remorseful", "apologetic"),
    "grief": ("grieving", "devastated", "bereft", "mournful", "heartsick"),
    "joy": ("happy", "delighted", "thrilled", "overjoyed", "cheerful", "glad", "joyful", "elated", "ecstatic", "blissful", "jolly",
            "jovial", "merry", "gleeful", "giddy", "carefree", "peaceful", "wonderful", "fantastic", "great", "good", "lively",
            "playful", "energetic", "positive", "content", "festive", "sunny", "free"),
    "excitement": ("excited", "pumped", "stoked", "eager", "hyped", "enthusiastic", "exhilarated", "thrilled to bits", "buzzing"),
    "gratitude": ("grateful", "thankful", "appreciative", "blessed", "fortunate", "lucky"),
    "love": ("smitten", "besotted", "infatuated", "loving", "affectionate", "tender", "passionate", "fond", "devoted", "romantic",
             "adored", "loved", "cherished", "sentimental", "nostalgic", "longing", "sweet on him"),
    "caring": ("caring", "sympathetic", "compassionate", "supportive", "protective", "gentle", "kind", "generous", "faithful", "loyal"),
    "optimism": ("hopeful", "optimistic", "encouraged", "confident about it", "upbeat"),
    "relief": ("relieved", "reassured", "at ease", "calm", "relaxed", "safe"),
    "pride": ("proud", "triumphant", "accomplished", "successful", "confident", "strong", "capable"),
    "admiration": ("impressed", "awed", "inspired", "in awe"),
    "amusement": ("amused", "entertained", "tickled"),
    "approval": ("satisfied", "pleased", "accepted", "valued", "respected", "welcome"),
    "desire": ("tempted", "yearning", "craving it", "hungry for more"),
    "surprise": ("surprised", "shocked", "astonished", "stunned", "amazed", "startled", "speechless", "dumbfounded", "taken aback",
                 "astounded", "blown away"),
    "confusion": ("confused", "puzzled", "baffled", "perplexed", "bewildered", "weird", "strange", "odd", "funny", "dazed"),
    "curiosity": ("curious", "intrigued", "interested", "fascinated", "inquisitive"),
}
FEELING_TEMPLATES: tuple[str, ...] = (
    # shopping
    "I feel so {w} about this {p}.", "I was {w} when the {p} arrived.", "This {p} left me {w}.", "The {p} made me {w}.",
    "I was so {w} when I opened the box.", "My {person} was {w} when we tried the {p}.", "i feel {w} about the whole order",
    "im feeling {w} after using the {p}", "I've never felt so {w} about a purchase.", "We were {w}.",
    # everyday first-person statements, as people post them
    "I feel {w}.", "Honestly I'm {w}.", "Feeling {w} right now.", "I feel really {w} today.", "I am {w}.", "i feel {w}",
    "i feel so {w} right now", "i am feeling {w} today", "i feel {w} when i think about {topic}", "i feel a bit {w}",
    "i still feel {w} about {topic}", "i feel really {w} and i dont know why", "i feel {w} after {event}",
    "im feeling very {w} this morning", "i feel {w} about {topic}", "i just feel {w} and {w2}", "i feel {w} and {w2} at the same time",
    "i left {event} feeling {w}", "i feel kind of {w} tonight", "i keep feeling {w} about {topic}", "i woke up feeling {w}",
    "i feel {w} every time i think about {topic}", "im still {w} from {event}",
)
#: Topics and events of everyday feeling statements; ``{topic}``, ``{event}``.
TOPICS: tuple[str, ...] = (
    "work", "my job", "the future", "the holidays", "school", "my exams", "tomorrow", "my family", "this week", "everything",
    "my friends", "the move", "my relationship", "money", "my health", "the new house", "my team", "the wedding",
)
EVENTS: tuple[str, ...] = (
    "talking to her", "the meeting", "reading the news", "the interview", "last night", "the phone call", "the game",
    "seeing my parents", "the party", "class", "the doctor's appointment", "the concert",
)
#: Factual, neutral lines.
NEUTRAL_FACTS: tuple[str, ...] = (
    "I bought the {p} for my {person}.", "The {p} arrived on Monday.", "It comes in black and white.", "I ordered the {p} last week.",
    "The {p} uses two AA batteries.", "I've had the {p} for {when}.", "It comes with a {part} and a manual.", "The box contains one {p}.",
    "This is the second version of the {p}.", "I use the {p} at home.", "It was delivered to my office.", "The {p} weighs about a pound.",
    "My {person} uses it for practice.", "It has one {part} on the side.", "Bought it during the sale.", "It replaced my old {p}.",
)


class AugmentConfig(StrictConfig):
    """How many synthetic examples of each kind :func:`generate` writes.

    Attributes
    ----------
    phrases
        One-line idioms, negation, sarcasm, emoji and slang (polarity only).
    reviews
        Whole reviews of 2-5 sentences (polarity only; lukewarm and mixed ones are neutral).
    feelings
        First-person feeling statements with a GoEmotions label (emotions and polarity).
    facts
        Factual lines (neutral polarity, ``neutral`` emotion).
    seed
        Random seed.
    """

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "augment config"

    phrases: int = Field(5000, ge=0)
    reviews: int = Field(5000, ge=0)
    feelings: int = Field(6000, ge=0)
    facts: int = Field(500, ge=0)
    seed: int = 13


def _fill(template: str, rng: np.random.Generator) -> str:
    values = {
        "p": PRODUCTS[rng.integers(len(PRODUCTS))], "part": PARTS[rng.integers(len(PARTS))], "when": WHEN[rng.integers(len(WHEN))],
        "person": PERSONS[rng.integers(len(PERSONS))], "seller": SELLERS[rng.integers(len(SELLERS))],
        "good": GOOD_WORDS[rng.integers(len(GOOD_WORDS))], "bad": BAD_WORDS[rng.integers(len(BAD_WORDS))],
        "problem": PROBLEM_WORDS[rng.integers(len(PROBLEM_WORDS))], "topic": TOPICS[rng.integers(len(TOPICS))],
        "event": EVENTS[rng.integers(len(EVENTS))],
    }
    return template.format(**values)


def _vary(text: str, rng: np.random.Generator) -> str:
    """Surface noise shops' reviews have: lower case, no final stop, exclamation, all caps."""
    r = rng.random()
    if r < 0.15:
        text = text.lower()
    elif r < 0.22:
        text = text.rstrip(".") + "!"
    elif r < 0.27:
        text = text.rstrip(".")
    elif r < 0.29:
        text = text.upper()
    return text


def _phrase(rng: np.random.Generator) -> tuple[str, int]:
    r = rng.random()
    if r < 0.62:
        label, template = PHRASES[rng.integers(len(PHRASES))]
        text = _fill(template, rng)
    elif r < 0.77:
        label = NEG
        if rng.random() < 0.4:
            text = _fill(SARCASM_FIXED[rng.integers(len(SARCASM_FIXED))], rng)
        else:
            praise = SARCASM_PRAISE[rng.integers(len(SARCASM_PRAISE))]
            fail = _fill(SARCASM_FAIL[rng.integers(len(SARCASM_FAIL))], rng)
            template = SARCASM_TEMPLATES[rng.integers(len(SARCASM_TEMPLATES))]
            text = template.format(praise=praise, praise_low=praise.lower(), fail=fail, fail_cap=fail[:1].upper() + fail[1:])
    elif r < 0.9:  # an emoji after a short sentence of the same polarity, or emoji alone
        label = POS if rng.random() < 0.5 else NEG
        emoji = EMOJI[label][rng.integers(len(EMOJI[label]))]
        same = [t for lab, t in PHRASES if lab == label and len(t) < 40]
        if rng.random() < 0.2:
            text = emoji * int(rng.integers(1, 4))
        else:
            text = _fill(same[rng.integers(len(same))], rng).rstrip(".") + " " + emoji
    else:  # an aspect sentence on its own
        aspect = list(ASPECT_SENTENCES)[rng.integers(len(ASPECT_SENTENCES))]
        label = POS if rng.random() < 0.5 else NEG
        options = ASPECT_SENTENCES[aspect][0 if label == POS else 1]
        text = _fill(options[rng.integers(len(options))], rng)
    return _vary(text, rng), label


def _review(rng: np.random.Generator) -> tuple[str, int]:
    label = (NEG, NEU, POS)[rng.integers(3)]
    aspects = list(ASPECT_SENTENCES)
    chosen = [aspects[i] for i in rng.choice(len(aspects), size=int(rng.integers(1, 4)), replace=False)]
    sentences = [OPENINGS[label][rng.integers(len(OPENINGS[label]))]]
    for k, aspect in enumerate(chosen):
        pos, neg, luke = ASPECT_SENTENCES[aspect]
        if label == NEU:  # lukewarm, hedged, or one good and one bad point
            r = rng.random()
            pool = luke if r < 0.4 else HEDGES if r < 0.6 else (pos if k % 2 == 0 else neg)
        else:
            main, minor = (pos, neg) if label == POS else (neg, pos)
            pool = minor if (k > 0 and rng.random() < 0.25) else main
        sentences.append(pool[rng.integers(len(pool))])
    closing = CLOSINGS[label][rng.integers(len(CLOSINGS[label]))]
    if closing:
        sentences.append(closing)
    return " ".join(_fill(s, rng) for s in sentences), label


def _feeling(rng: np.random.Generator) -> tuple[str, int, str]:
    labels = list(FEELINGS)
    emotion = labels[rng.integers(len(labels))]
    words = FEELINGS[emotion]
    template = FEELING_TEMPLATES[rng.integers(len(FEELING_TEMPLATES))]
    first, second = rng.choice(len(words), size=2, replace=False)
    text = _fill(template.replace("{w}", words[first]).replace("{w2}", words[second]), rng)
    polarity = POS if emotion in SENTIMENT_GROUPS["positive"] else NEG if emotion in SENTIMENT_GROUPS["negative"] else NEU
    return _vary(text, rng), polarity, emotion


def generate(config: AugmentConfig | None = None):
    """Synthetic labelled examples (see the module docstring), in a seeded random order.

    Returns
    -------
    sentiment.training.Examples
        ``texts``, ``polarity`` (class index per text) and ``emotions`` (``n x 28``: the one
        emotion of a ``feeling`` example, ``neutral`` for a fact, NaN rows for phrases and
        reviews). Duplicate texts are dropped (the first label wins).
    """
    from .training import Examples

    config = config or AugmentConfig()
    rng = np.random.default_rng(config.seed)
    texts: list[str] = []
    polarity: list[int] = []
    emotions: list[np.ndarray] = []
    unlabelled = np.full(len(GOEMOTIONS_LABELS), np.nan, np.float32)

    def one_hot(label: str) -> np.ndarray:
        v = np.zeros(len(GOEMOTIONS_LABELS), np.float32)
        v[GOEMOTIONS_LABELS.index(label)] = 1.0
        return v

    def add(text: str, label: int, emotion: np.ndarray) -> None:
        texts.append(text)
        polarity.append(label)
        emotions.append(emotion)

    for _ in range(config.phrases):
        add(*_phrase(rng), unlabelled)
    for _ in range(config.reviews):
        add(*_review(rng), unlabelled)
    for _ in range(config.feelings):
        text, label, emotion = _feeling(rng)
        add(text, label, one_hot(emotion))
    for _ in range(config.facts):
        add(_vary(_fill(NEUTRAL_FACTS[rng.integers(len(NEUTRAL_FACTS))], rng), rng), NEU, one_hot("neutral"))
    keep = _first_of_each(texts)
    order = rng.permutation(len(keep))
    keep = keep[order]
    return Examples([texts[i] for i in keep], np.asarray(polarity, np.int64)[keep], np.stack(emotions)[keep] if emotions else None)


def normalize(text: str) -> str:
    """Lower case, ASCII punctuation and spacing removed (emoji kept): to compare texts for
    leakage checks ("Save your money!" and "save your money" are the same phrase)."""
    return re.sub(r"[\s!-/:-@\[-`{-~]+", " ", text.lower()).strip()


def _first_of_each(texts: list[str]) -> np.ndarray:
    seen: set[str] = set()
    keep = []
    for i, t in enumerate(texts):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)
