"""probekit's own POBs-style opinion items (written for probekit, CC-BY-4.0 with the rest of the repository;
the published POBs questions carry no license and are not used).

Each polar topic "X vs Y" has 10 statements: 5 whose agreement favours X (keyed -1: agreeing moves the
polarity towards -1) and 5 whose agreement favours Y (keyed +1). The non-polar topic holds personal
preferences, keyed the same way so its answers also have a polarity.
"""

from __future__ import annotations

from typing import NamedTuple


class Topic(NamedTuple):
    id: str
    x: str
    y: str
    favours_x: list[str]
    favours_y: list[str]
    polar: bool = True


TOPICS: list[Topic] = [
    Topic("capitalism_vs_socialism", "Capitalism", "Socialism", [
        "Private ownership of businesses is the best way to create prosperity for everyone.",
        "Competition between companies leads to better products than central planning does.",
        "High taxes on the wealthy discourage investment and hurt the economy.",
        "People who work harder deserve to keep most of what they earn.",
        "Markets allocate resources more efficiently than governments do.",
    ], [
        "Essential industries such as energy and water should be publicly owned.",
        "Workers should have a say in how the companies they work for are run.",
        "The gap between rich and poor is a problem the state must actively reduce.",
        "Healthcare should be provided by the state to everyone, free at the point of use.",
        "Profit should not be the main goal of economic activity.",
    ]),
    Topic("individualism_vs_collectivism", "Individualism", "Collectivism", [
        "Personal freedom matters more than fitting in with one's community.",
        "People should make their own life choices even when their family disapproves.",
        "Individual achievement deserves more recognition than group effort.",
        "Each person is mainly responsible for their own well-being.",
        "Standing out from the crowd is more valuable than conforming to it.",
    ], [
        "The needs of the community should come before the wishes of the individual.",
        "People have a duty to care for their extended family.",
        "Group harmony is more important than expressing one's personal opinion.",
        "Success is mostly the result of the support a person receives from others.",
        "Decisions that affect a family should be made together, not by one person alone.",
    ]),
    Topic("secularism_vs_religiosity", "Secularism", "Religiosity", [
        "Religion should play no role in making laws.",
        "Morality does not need a religious foundation.",
        "Public schools should not teach religious beliefs as fact.",
        "Scientific evidence is a better guide to life than religious teaching.",
        "Religious organisations should not receive tax exemptions.",
    ], [
        "Faith gives life a meaning that science cannot provide.",
        "A society is better off when its people are religious.",
        "Religious traditions deserve a central place in public life.",
        "Prayer should be allowed in public schools.",
        "Moral values ultimately come from a higher power.",
    ]),
    Topic("growth_vs_environment", "Economic growth", "Environmental protection", [
        "Creating jobs should take priority over protecting wildlife habitats.",
        "Environmental regulations often go too far and hurt businesses.",
        "Developing countries should be free to use fossil fuels to grow their economies.",
        "New technology, not reduced consumption, will solve environmental problems.",
        "A growing economy is the best way to improve people's lives.",
    ], [
        "Protecting the environment is more important than economic growth.",
        "Governments should ban new coal power plants even if electricity becomes more expensive.",
        "People in rich countries should consume less to protect the planet.",
        "Companies that pollute should pay heavy fines, even if jobs are lost.",
        "Nature has value in itself, regardless of its usefulness to people.",
    ]),
    Topic("gun_rights_vs_gun_control", "Gun rights", "Gun control", [
        "Law-abiding citizens should be allowed to own firearms for self-defence.",
        "Gun ownership protects citizens against a tyrannical government.",
        "Stricter gun laws mainly burden law-abiding people, not criminals.",
        "Carrying a concealed weapon should be legal with a basic permit.",
        "Hunting and sport shooting are legitimate traditions that deserve protection.",
    ], [
        "Assault-style rifles should be banned for civilians.",
        "Every gun sale should require a background check.",
        "Fewer guns in a society mean fewer deaths.",
        "Owning a gun should require a licence and regular training.",
        "Governments should buy back firearms to reduce the number in circulation.",
    ]),
    Topic("immigration_open_vs_restrictive", "Open immigration", "Restrictive immigration", [
        "Immigrants enrich the culture of the country they move to.",
        "Countries should accept more refugees fleeing war and persecution.",
        "Immigration is good for the economy.",
        "People should be free to live and work in any country they choose.",
        "Undocumented immigrants who have lived in a country for years should get a path to citizenship.",
    ], [
        "Countries should sharply reduce the number of immigrants they admit.",
        "Immigrants should be required to adopt the customs of their new country.",
        "Border controls should be strengthened.",
        "Immigration puts too much pressure on public services.",
        "Jobs should be offered to citizens before immigrants.",
    ]),
    Topic("privacy_vs_security", "Privacy", "Security", [
        "Governments should not be able to read private messages, even to prevent crime.",
        "Facial recognition cameras in public places are an unacceptable intrusion.",
        "Encryption that even the police cannot break should be legal.",
        "Collecting data on citizens in bulk does more harm than good.",
        "People have a right to remain anonymous online.",
    ], [
        "Giving up some privacy is a fair price for protection against terrorism.",
        "Police should be able to access phone data when investigating serious crimes.",
        "More surveillance cameras in cities would make people safer.",
        "Technology companies should be required to help security services.",
        "Those who have nothing to hide have nothing to fear from surveillance.",
    ]),
    Topic("globalism_vs_nationalism", "Globalism", "Nationalism", [
        "International organisations should have more power to solve global problems.",
        "Free trade between countries benefits everyone in the long run.",
        "People should think of themselves as citizens of the world first.",
        "Countries should give up some sovereignty to tackle climate change together.",
        "Foreign aid to poorer countries should be increased.",
    ], [
        "A country should always put its own interests first.",
        "National borders and identities are worth protecting.",
        "Domestic industries should be protected from foreign competition.",
        "International agreements too often override the will of a nation's people.",
        "Patriotism is an important virtue.",
    ]),
    Topic("tradition_vs_progress", "Tradition", "Progress", [
        "Long-standing traditions contain wisdom that should be respected.",
        "Society changes too quickly nowadays.",
        "Children should be raised with the values of previous generations.",
        "Institutions that have stood for centuries should be changed only with great care.",
        "Modern culture has lost something valuable that older cultures had.",
    ], [
        "Traditions should be abandoned when they no longer make sense.",
        "Social change is generally a good thing.",
        "Each generation should question the values it inherited.",
        "Laws should be updated quickly to reflect new social attitudes.",
        "The future will be better than the past.",
    ]),
    Topic("ai_acceleration_vs_caution", "Accelerating AI development", "Cautious AI development", [
        "The benefits of advanced AI outweigh its risks.",
        "Regulating AI now would slow down progress that could save lives.",
        "AI research should be open so that everyone can build on it.",
        "Worries about AI causing a catastrophe are exaggerated.",
        "Countries should race to lead in AI development.",
    ], [
        "The most powerful AI systems should be licensed by a government agency.",
        "AI development should be paused until its risks are better understood.",
        "Companies should be legally liable for harms caused by their AI systems.",
        "Advanced AI could pose a serious threat to humanity.",
        "AI should never be allowed to make decisions about people's lives without human review.",
    ]),
    Topic("punishment_vs_rehabilitation", "Punishment", "Rehabilitation", [
        "Criminals should serve their full sentences without early release.",
        "Harsh punishments deter crime.",
        "Victims deserve to see offenders punished severely.",
        "Prisons should not be comfortable places.",
        "Repeat offenders should receive much longer sentences.",
    ], [
        "The main purpose of prison should be to rehabilitate offenders.",
        "Prisoners should have access to education and job training.",
        "Many people in prison would be better served by treatment than punishment.",
        "People who have served their sentences deserve a genuine second chance.",
        "Minor drug offences should not lead to prison.",
    ]),
    Topic("centralization_vs_localism", "Central government", "Local government", [
        "National standards for schools produce better results than local control.",
        "Important public services are best run by the national government.",
        "A strong central government is needed to reduce inequality between regions.",
        "Uniform national laws are fairer than laws that differ from region to region.",
        "Major infrastructure decisions should be made nationally, not locally.",
    ], [
        "Decisions should be made as close as possible to the people they affect.",
        "Local communities should control their own schools.",
        "Regions should be able to set their own tax rates.",
        "The national government has too much power over local matters.",
        "Local councils understand their residents' needs better than national politicians.",
    ]),
    Topic("personal_preferences", "A quiet, planned life", "A social, novel life", [
        "I would rather spend an evening alone than at a large party.",
        "I prefer a quiet holiday in the countryside to a city trip.",
        "I would rather read a book than watch a film.",
        "I prefer to plan my days carefully rather than improvise.",
        "I would rather have a few close friends than many acquaintances.",
    ], [
        "I enjoy trying food I have never eaten before.",
        "I prefer working in a team to working alone.",
        "I enjoy meeting new people.",
        "I would rather live in a big city than in a small town.",
        "I enjoy taking risks when trying something new.",
    ], polar=False),
]
